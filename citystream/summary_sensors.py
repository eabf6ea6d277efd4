"""Demo summary sections of the sensors domain."""

from __future__ import annotations

__all__ = ["SECTIONS"]

from citystream.summary import Section

SECTIONS: list[Section] = [
    Section(
        "Sensors: readings scored per kind",
        "SELECT kind, uniqExact(sensor_id) AS sensors, count() AS metric_readings, round(avg(score), 3) AS mean_score, "
        "countIf(score >= 0.9) AS over_0_9, min(ts) AS first, max(ts) AS last FROM sensor_readings FINAL "
        "GROUP BY kind ORDER BY kind",
    ),
    Section(
        "Sensors: alerts by condition (rule, model, offline)",
        "SELECT kind, condition, severity, count() AS alerts, countIf(status = 'open') AS open_now, "
        "uniqExact(case_id) AS incidents FROM v_sensor_alerts GROUP BY kind, condition, severity "
        "ORDER BY alerts DESC LIMIT 15",
    ),
    Section(
        "Sensors: latest alerts",
        "SELECT opened, sensor_id, condition, metric, round(value, 2) AS value, round(score, 3) AS score, status, case_id "
        "FROM v_sensor_alerts ORDER BY opened DESC LIMIT 10",
    ),
]
