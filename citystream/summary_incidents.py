"""Demo summary sections of the incidents domain (KPI definitions: models/incidents/kpi.py)."""

from __future__ import annotations

__all__ = ["SECTIONS"]

from citystream.summary import Section

SECTIONS: list[Section] = [
    Section(
        "Incidents: KPIs per local day and district (cohort = cases registered that day)",
        "SELECT day, member AS district, registered, handled, closed, round(disposal_rate, 3) AS disposal_rate, "
        "round(closure_rate, 3) AS closure_rate, steps_done, round(on_time_rate, 3) AS on_time_rate, "
        "closed_on_day, round(reopen_rate, 3) AS reopen_rate FROM v_incident_kpi "
        "WHERE dimension IN ('all', 'district') ORDER BY day, dimension = 'all' DESC, registered DESC LIMIT 12",
    ),
    Section(
        "Incidents: time per step (minutes), on-time share and deadline breaches",
        "SELECT t.step AS step, count() AS done, round(quantileExactInclusive(0.5)(t.duration_ms) / 60000, 1) AS median_min, "
        "round(quantileExactInclusive(0.9)(t.duration_ms) / 60000, 1) AS p90_min, round(avg(t.on_time), 3) AS on_time, "
        "any(b.breaches) AS breaches FROM incident_transitions AS t FINAL "
        "LEFT JOIN (SELECT step, count() AS breaches FROM incident_breaches FINAL GROUP BY step) AS b USING (step) "
        "WHERE t.step != '' GROUP BY step "
        "ORDER BY indexOf(['register', 'dispatch', 'handle', 'feedback', 'verify', 'close'], step) "
        "SETTINGS join_use_nulls = 0",
    ),
    Section(
        "Incidents: open cases by age (at the newest event time stored)",
        "SELECT age_bucket, cases, as_of FROM v_incident_backlog WHERE dimension = 'all' "
        "ORDER BY indexOf(['<1h', '1-4h', '4-24h', '1-3d', '>=3d'], age_bucket)",
    ),
    Section(
        "Incidents: reports by channel (duplicates linked to an earlier case)",
        "SELECT channel, sum(reports) AS reports, sum(distinct_cases) AS distinct_cases, sum(duplicates) AS duplicates "
        "FROM v_incident_reports GROUP BY channel ORDER BY reports DESC LIMIT 8",
    ),
]
