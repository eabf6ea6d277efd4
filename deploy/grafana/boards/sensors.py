"""The Sensors dashboard: latest readings per kind, alerts over time, open alerts (table + map), score heat map."""

from __future__ import annotations

from typing import Any

FILE = "sensors.json"


def build(h: Any) -> dict[str, Any]:
    """``h`` holds the panel helpers of deploy/grafana/generate.py (ch_panel, prom_panel, dashboard)."""
    return h.dashboard("citystream-sensors", "citystream · Sensors", [
        h.ch_panel("Latest readings per kind",
                   "SELECT kind, metric, count() AS sensors, round(avg(value), 3) AS mean, round(max(value), 3) AS max, "
                   "round(max(score), 3) AS max_score, max(last_ts) AS latest FROM v_sensor_latest "
                   "GROUP BY kind, metric ORDER BY kind, metric"),
        h.ch_panel("Alerts opened over time by condition",
                   "SELECT $__timeInterval(opened) AS time, condition, count() AS alerts FROM v_sensor_alerts "
                   "WHERE $__timeFilter(opened) GROUP BY time, condition ORDER BY time", kind="timeseries"),
        h.ch_panel("Open alerts",
                   "SELECT opened, sensor_id, kind, condition, severity, metric, value, threshold, round(score, 3) AS score, "
                   "case_id FROM v_sensor_open_alerts ORDER BY opened DESC LIMIT 200", w=24),
        h.ch_panel("Open alerts on the map",
                   "SELECT sensor_id, kind, condition, severity, lat AS latitude, lon AS longitude FROM v_sensor_open_alerts "
                   "WHERE lat != 0", kind="geomap"),
        h.ch_panel("Anomaly score heat map (max per sensor and 5 min)",
                   "SELECT toStartOfInterval(ts, INTERVAL 5 minute) AS time, sensor_id, round(max(score), 3) AS score "
                   "FROM sensor_readings FINAL WHERE $__timeFilter(ts) GROUP BY time, sensor_id ORDER BY time, sensor_id",
                   kind="heatmap"),
        h.ch_panel("Latest value per sensor",
                   "SELECT sensor_id, kind, metric, value, round(score, 3) AS score, last_ts FROM v_sensor_latest "
                   "ORDER BY score DESC, sensor_id LIMIT 200"),
    ])
