-- City-management cases (受理 → 立案 → 派遣 → 处置 → 反馈 → 核查 → 结案): rows of `incident.updates`
-- (models/incidents/rows.py) and the centre's KPIs as views. Definitions: models/incidents/kpi.py.
--
-- Idempotency: every table is a ReplacingMergeTree keyed by the row's identity; rows are deterministic
-- functions of the case's events, so a replay or a re-delivery adds nothing. Cases carry a version
-- (applied transitions + breaches reported): the newest state wins. Read with FINAL (the views do).
-- Privacy: `reporter` holds an HMAC token (h:…) of the phone number, never the number; `text` is scrubbed.
-- Days are local calendar days in Xiamen (Asia/Shanghai, UTC+8 all year).
-- The KPIs are plain views over FINAL rather than aggregating materialized views: a materialized view
-- sees every inserted block, so a re-delivered batch would be counted twice before the merge.

CREATE TABLE IF NOT EXISTS incident_cases
(
    case_id         String,
    status          LowCardinality(String),
    district        LowCardinality(String),
    street          LowCardinality(String),
    community       LowCardinality(String),
    grid            LowCardinality(String),
    category        LowCardinality(String),
    subcategory     LowCardinality(String),
    channel         LowCardinality(String),
    cur_category    LowCardinality(String),
    cur_subcategory LowCardinality(String),
    lat             Float64,
    lon             Float64,
    reporter        String,
    text            String,
    reported_ms     Int64 EPHEMERAL,
    reported_at     DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(reported_ms),
    status_ms       Int64 EPHEMERAL,
    status_at       DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(status_ms),
    registered_ms   Int64 EPHEMERAL,
    registered_at   Nullable(DateTime64(3, 'UTC')) DEFAULT if(registered_ms > 0, fromUnixTimestamp64Milli(registered_ms), NULL),
    closed_ms       Int64 EPHEMERAL,
    closed_at       Nullable(DateTime64(3, 'UTC')) DEFAULT if(closed_ms > 0, fromUnixTimestamp64Milli(closed_ms), NULL),
    reopens         UInt16,
    step            LowCardinality(String),
    deadline_ms     Int64 EPHEMERAL,
    deadline_at     Nullable(DateTime64(3, 'UTC')) DEFAULT if(deadline_ms > 0, fromUnixTimestamp64Milli(deadline_ms), NULL),
    breaches        UInt16,
    version         UInt64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY case_id;

CREATE TABLE IF NOT EXISTS incident_transitions
(
    case_id       String,
    seq           UInt16,
    ts_ms         Int64 EPHEMERAL,
    ts            DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms),
    transition    LowCardinality(String),
    from_status   LowCardinality(String),
    to_status     LowCardinality(String),
    step          LowCardinality(String),
    step_start_ms Int64 EPHEMERAL,
    step_start    Nullable(DateTime64(3, 'UTC')) DEFAULT if(step_start_ms > 0, fromUnixTimestamp64Milli(step_start_ms), NULL),
    duration_ms   Int64 DEFAULT if(step_start_ms > 0, ts_ms - step_start_ms, 0),
    deadline_ms   Int64 EPHEMERAL,
    deadline      Nullable(DateTime64(3, 'UTC')) DEFAULT if(deadline_ms > 0, fromUnixTimestamp64Milli(deadline_ms), NULL),
    on_time       UInt8,
    reopens       UInt16,
    district      LowCardinality(String),
    street        LowCardinality(String),
    community     LowCardinality(String),
    grid          LowCardinality(String),
    category      LowCardinality(String),
    subcategory   LowCardinality(String),
    channel       LowCardinality(String),
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (case_id, ts, transition);

CREATE TABLE IF NOT EXISTS incident_breaches
(
    case_id     String,
    step        LowCardinality(String),
    status      LowCardinality(String),
    since_ms    Int64 EPHEMERAL,
    since       DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(since_ms),
    deadline_ms Int64 EPHEMERAL,
    deadline    DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(deadline_ms),
    breach_ms   Int64 EPHEMERAL,
    breach_ts   DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(breach_ms),
    district    LowCardinality(String),
    street      LowCardinality(String),
    community   LowCardinality(String),
    grid        LowCardinality(String),
    category    LowCardinality(String),
    subcategory LowCardinality(String),
    channel     LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (case_id, step, since);

CREATE TABLE IF NOT EXISTS incident_duplicates
(
    case_id        String,
    parent_case_id String,
    ts_ms          Int64 EPHEMERAL,
    ts             DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms),
    match_key      LowCardinality(String),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY case_id;

-- Cases with their duplicate parent ('' = an original report) and whether the current step is overdue
-- at the newest event time stored.
CREATE VIEW IF NOT EXISTS v_incident_cases AS
WITH (SELECT max(ts) FROM incident_transitions FINAL) AS as_of
SELECT c.*, d.parent_case_id AS parent_case_id,
       c.deadline_at IS NOT NULL AND c.deadline_at < as_of AS overdue
FROM incident_cases AS c FINAL
LEFT JOIN (SELECT case_id, parent_case_id FROM incident_duplicates FINAL) AS d USING (case_id)
SETTINGS join_use_nulls = 0;

-- KPIs per local day and group, in long form: `dimension` is district, street, community, grid, category,
-- subcategory, channel or all (member '*'). Cohort counts (registered, handled, closed) fall on the day of
-- the first register; steps on the day they completed; closed_on_day and reopened on the day of the close.
CREATE VIEW IF NOT EXISTS v_incident_kpi AS
WITH
    t AS (SELECT * FROM incident_transitions FINAL),
    cohort AS (
        SELECT case_id, any(district) AS district, any(street) AS street, any(community) AS community,
               any(grid) AS grid, any(category) AS category, any(subcategory) AS subcategory,
               any(channel) AS channel, minIf(ts, transition = 'register') AS registered_ts,
               countIf(transition = 'handle') > 0 AS handled, countIf(transition = 'close') > 0 AS closed
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
        FROM t WHERE transition = 'close'
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

-- Median and p90 duration of each step (completion ts - start ts), per completion day and group.
-- quantileExactInclusive interpolates linearly between order statistics, as numpy's default does.
CREATE VIEW IF NOT EXISTS v_incident_step_times AS
SELECT toDate(ts, 'Asia/Shanghai') AS day, dim.1 AS dimension, dim.2 AS member, step, count() AS n,
       quantileExactInclusive(0.5)(toFloat64(duration_ms)) AS median_ms,
       quantileExactInclusive(0.9)(toFloat64(duration_ms)) AS p90_ms
FROM incident_transitions FINAL
ARRAY JOIN [('all', '*'), ('district', district), ('street', street), ('community', community), ('grid', grid),
            ('category', category), ('subcategory', subcategory), ('channel', channel)] AS dim
WHERE step != ''
GROUP BY day, dimension, member, step;

-- Open cases (neither closed nor rejected) by age (as_of - report time) at the newest event time stored.
CREATE VIEW IF NOT EXISTS v_incident_backlog AS
WITH (SELECT max(ts) FROM incident_transitions FINAL) AS as_of
SELECT dim.1 AS dimension, dim.2 AS member,
       multiIf(age_ms < 3600000, '<1h', age_ms < 14400000, '1-4h', age_ms < 86400000, '4-24h',
               age_ms < 259200000, '1-3d', '>=3d') AS age_bucket,
       count() AS cases, as_of
FROM (
    SELECT *, toUnixTimestamp64Milli(as_of) - toUnixTimestamp64Milli(reported_at) AS age_ms
    FROM incident_cases FINAL
    WHERE status NOT IN ('closed', 'rejected')
)
ARRAY JOIN [('all', '*'), ('district', district), ('street', street), ('community', community), ('grid', grid),
            ('category', category), ('subcategory', subcategory), ('channel', channel)] AS dim
GROUP BY dimension, member, age_bucket;

-- Reports per local day and channel: raw reports, distinct problems (reports not linked to an earlier case).
CREATE VIEW IF NOT EXISTS v_incident_reports AS
SELECT toDate(c.reported_at, 'Asia/Shanghai') AS day, c.channel AS channel, count() AS reports,
       countIf(d.parent_case_id = '') AS distinct_cases, countIf(d.parent_case_id != '') AS duplicates
FROM incident_cases AS c FINAL
LEFT JOIN (SELECT case_id, parent_case_id FROM incident_duplicates FINAL) AS d USING (case_id)
GROUP BY day, channel
SETTINGS join_use_nulls = 0;
