-- Cases raised by machines (sensor alerts) close automatically when the condition clears: transition
-- `resolve` (自动结案, models/incidents/lifecycle.py). KPIs count it as a close, as the Python reference
-- (models/incidents/kpi.py) does.
CREATE OR REPLACE VIEW v_incident_kpi AS
WITH
    t AS (SELECT * FROM incident_transitions FINAL),
    cohort AS (
        SELECT case_id, any(district) AS district, any(street) AS street, any(community) AS community,
               any(grid) AS grid, any(category) AS category, any(subcategory) AS subcategory,
               any(channel) AS channel, minIf(ts, transition = 'register') AS registered_ts,
               countIf(transition = 'handle') > 0 AS handled, countIf(transition IN ('close', 'resolve')) > 0 AS closed
        FROM t
        GROUP BY case_id
        HAVING countIf(transition = 'register') > 0
    ),
    parts AS (
        SELECT toDate(registered_ts, 'Asia/Shanghai') AS day, district, street, community, grid, category,
               subcategory, channel, toUInt64(1) AS n_registered, toUInt64(handled) AS n_handled,
               toUInt64(closed) AS n_closed, toUInt64(0) AS n_steps_done, toUInt64(0) AS n_steps_on_time,
               toUInt64(0) AS n_closed_on_day, toUInt64(0) AS n_reopened
        FROM cohort
        UNION ALL
        SELECT toDate(ts, 'Asia/Shanghai'), district, street, community, grid, category, subcategory, channel,
               0, 0, 0, 1, toUInt64(on_time), 0, 0
        FROM t WHERE step != ''
        UNION ALL
        SELECT toDate(ts, 'Asia/Shanghai'), district, street, community, grid, category, subcategory, channel,
               0, 0, 0, 0, 0, 1, toUInt64(reopens > 0)
        FROM t WHERE transition IN ('close', 'resolve')
    )
SELECT day, dim.1 AS dimension, dim.2 AS member,
       sum(n_registered) AS registered, sum(n_handled) AS handled, sum(n_closed) AS closed,
       sum(n_steps_done) AS steps_done, sum(n_steps_on_time) AS steps_on_time,
       sum(n_closed_on_day) AS closed_on_day, sum(n_reopened) AS reopened,
       if(registered > 0, handled / registered, NULL) AS disposal_rate,
       if(registered > 0, closed / registered, NULL) AS closure_rate,
       if(steps_done > 0, steps_on_time / steps_done, NULL) AS on_time_rate,
       if(closed_on_day > 0, reopened / closed_on_day, NULL) AS reopen_rate
FROM parts
ARRAY JOIN [('all', '*'), ('district', district), ('street', street), ('community', community), ('grid', grid),
            ('category', category), ('subcategory', subcategory), ('channel', channel)] AS dim
GROUP BY day, dimension, member;
