"""The Incidents dashboard: the centre's KPIs, step times, backlog, deadline breaches and duplicate reports.

KPI definitions: models/incidents/kpi.py; the views: sinks/sql/004_incidents.sql. Days are Xiamen local days.
"""

from __future__ import annotations

from typing import Any

FILE = "incidents.json"

_DAYS = "day >= toDate($__fromTime, 'Asia/Shanghai') AND day <= toDate($__toTime, 'Asia/Shanghai')"
_STEPS = "['register', 'dispatch', 'handle', 'feedback', 'verify', 'close']"


def _kpi_table(h: Any, dimension: str, w: int = 12) -> dict[str, Any]:
    return h.ch_panel(
        f"KPIs by {dimension} (cohort: cases registered that day)",
        f"SELECT day, member AS {dimension}, registered, round(disposal_rate, 3) AS disposal_rate, "
        f"round(closure_rate, 3) AS closure_rate, steps_done, round(on_time_rate, 3) AS on_time_rate, "
        f"closed_on_day, round(reopen_rate, 3) AS reopen_rate FROM v_incident_kpi "
        f"WHERE dimension = '{dimension}' AND {_DAYS} ORDER BY day DESC, registered DESC LIMIT 200", w=w)


def build(h: Any) -> dict[str, Any]:
    """``h`` holds the panel helpers of deploy/grafana/generate.py (ch_panel, prom_panel, dashboard)."""
    return h.dashboard("citystream-incidents", "citystream · Incidents", [
        h.ch_panel("Open cases", "SELECT sum(cases) AS open_cases FROM v_incident_backlog WHERE dimension = 'all'",
                   kind="stat", w=6, h=4),
        h.ch_panel("Reports (raw) / distinct problems",
                   "SELECT sum(reports) AS reports, sum(distinct_cases) AS distinct_problems FROM v_incident_reports "
                   f"WHERE {_DAYS}", kind="stat", w=6, h=4),
        h.ch_panel("Steps on time", "SELECT sum(steps_on_time) / nullIf(sum(steps_done), 0) AS on_time_rate "
                   f"FROM v_incident_kpi WHERE dimension = 'all' AND {_DAYS}", kind="stat", w=6, h=4, unit="percentunit"),
        h.ch_panel("Deadline breaches", "SELECT count() AS breaches FROM incident_breaches FINAL "
                   "WHERE $__timeFilter(breach_ts)", kind="stat", w=6, h=4),
        h.ch_panel("Case transitions (event time)",
                   "SELECT $__timeInterval(ts) AS time, countIf(transition = 'report') AS reported, "
                   "countIf(transition = 'dispatch') AS dispatched, countIf(transition IN ('close', 'resolve')) AS closed, "
                   "countIf(transition = 'reject') AS rejected FROM incident_transitions FINAL "
                   "WHERE $__timeFilter(ts) GROUP BY time ORDER BY time", kind="timeseries", w=16),
        h.ch_panel("Backlog: open cases by age",
                   "SELECT age_bucket, cases FROM v_incident_backlog WHERE dimension = 'all' "
                   "ORDER BY indexOf(['<1h', '1-4h', '4-24h', '1-3d', '>=3d'], age_bucket)", kind="barchart", w=8),
        h.ch_panel("Time per step (minutes, steps completed in range)",
                   "SELECT step, round(quantileExactInclusive(0.5)(duration_ms) / 60000, 1) AS median_min, "
                   "round(quantileExactInclusive(0.9)(duration_ms) / 60000, 1) AS p90_min FROM incident_transitions FINAL "
                   f"WHERE step != '' AND $__timeFilter(ts) GROUP BY step ORDER BY indexOf({_STEPS}, step)",
                   kind="barchart", w=12),
        h.ch_panel("Backlog by district and age",
                   "SELECT member AS district, sumIf(cases, age_bucket = '<1h') AS lt_1h, "
                   "sumIf(cases, age_bucket = '1-4h') AS h1_4, sumIf(cases, age_bucket = '4-24h') AS h4_24, "
                   "sumIf(cases, age_bucket IN ('1-3d', '>=3d')) AS over_1d FROM v_incident_backlog "
                   "WHERE dimension = 'district' GROUP BY district ORDER BY district", w=12),
        _kpi_table(h, "district"),
        _kpi_table(h, "street"),
        _kpi_table(h, "grid"),
        _kpi_table(h, "category"),
        _kpi_table(h, "channel", w=24),
        h.ch_panel("Latest deadline breaches",
                   "SELECT breach_ts, case_id, step, status, since, district, street, grid, category, subcategory, "
                   "channel FROM incident_breaches FINAL WHERE $__timeFilter(breach_ts) "
                   "ORDER BY breach_ts DESC LIMIT 100", w=24),
        h.ch_panel("Open cases nearest their deadline",
                   "SELECT case_id, status, step, deadline_at, overdue, district, grid, category, subcategory, channel, "
                   "reported_at, parent_case_id FROM v_incident_cases WHERE status NOT IN ('closed', 'rejected') "
                   "ORDER BY deadline_at ASC LIMIT 100", w=24),
        h.ch_panel("Reports by channel: raw, distinct problems, duplicates",
                   "SELECT channel, sum(reports) AS reports, sum(distinct_cases) AS distinct_problems, "
                   f"sum(duplicates) AS duplicates FROM v_incident_reports WHERE {_DAYS} "
                   "GROUP BY channel ORDER BY reports DESC", kind="barchart", w=12),
        h.ch_panel("Open cases on the map",
                   "SELECT lat, lon, case_id, status, category, subcategory, channel FROM v_incident_cases "
                   "WHERE status NOT IN ('closed', 'rejected')", kind="geomap", w=12),
        h.prom_panel("Incident events by outcome /s", "sum by (outcome) (rate(citystream_incident_events_total[5m]))",
                     "{{outcome}}", w=24),
    ])
