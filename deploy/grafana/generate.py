"""Generate the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json) from compact specs.

Run ``python deploy/grafana/generate.py`` after editing a spec; a test checks the JSON files are up to date
and runs every ClickHouse panel query against the embedded engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
CH = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
PROM = {"type": "prometheus", "uid": "prometheus"}


def ch_panel(title: str, sql: str, kind: str = "table", w: int = 12, h: int = 8, unit: str | None = None) -> dict[str, Any]:
    """A panel fed by ClickHouse SQL. ``kind``: table, timeseries, stat, barchart, piechart, geomap."""
    fmt = 0 if kind == "timeseries" else 1  # plugin formats: 0 time series, 1 table
    panel: dict[str, Any] = {
        "type": kind, "title": title, "datasource": CH,
        "gridPos": {"w": w, "h": h},
        "targets": [{"refId": "A", "datasource": CH, "editorType": "sql", "format": fmt,
                     "queryType": "timeseries" if kind == "timeseries" else "table", "rawSql": sql}],
    }
    if unit:
        panel["fieldConfig"] = {"defaults": {"unit": unit}, "overrides": []}
    return panel


def prom_panel(title: str, expr: str, legend: str, w: int = 12, h: int = 8, unit: str | None = None) -> dict[str, Any]:
    """A time-series panel fed by a Prometheus expression."""
    panel: dict[str, Any] = {
        "type": "timeseries", "title": title, "datasource": PROM, "gridPos": {"w": w, "h": h},
        "targets": [{"refId": "A", "datasource": PROM, "expr": expr, "legendFormat": legend}],
    }
    if unit:
        panel["fieldConfig"] = {"defaults": {"unit": unit}, "overrides": []}
    return panel


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], time_from: str = "now-6h") -> dict[str, Any]:
    """Lay panels out left to right, top to bottom, on Grafana's 24-column grid."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        g = p["gridPos"]
        if x + g["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        g.update(x=x, y=y)
        x += g["w"]
        row_h = max(row_h, g["h"])
        p["id"] = i
    return {
        "uid": uid, "title": title, "tags": ["citystream"], "schemaVersion": 39, "version": 1,
        "editable": False, "refresh": "30s", "time": {"from": time_from, "to": "now"},
        "timezone": "browser", "panels": panels, "templating": {"list": []}, "annotations": {"list": []},
    }


def pipeline() -> dict[str, Any]:
    return dashboard("citystream-pipeline", "citystream · Pipeline", [
        prom_panel("Messages consumed /s by topic", "sum by (topic) (rate(citystream_records_in_total[1m]))", "{{topic}}"),
        prom_panel("Dead letters /s by reason", "sum by (topic, reason) (rate(citystream_dead_letters_total[5m]))",
                   "{{topic}} {{reason}}"),
        prom_panel("Consumer lag by topic", "sum by (topic) (citystream_consumer_lag)", "{{topic}}"),
        prom_panel("Event-time lag", "max by (topic) (citystream_event_time_lag_seconds)", "{{topic}}", unit="s"),
        prom_panel("ClickHouse insert p95 latency",
                   "histogram_quantile(0.95, sum by (le, table) (rate(citystream_sink_insert_seconds_bucket[5m])))",
                   "{{table}}", unit="s"),
        prom_panel("GPS fixes by outcome /s", "sum by (outcome) (rate(citystream_bike_fixes_total[1m]))", "{{outcome}}"),
        ch_panel("GPS fixes per minute (event time)",
                 "SELECT minute AS time, sum(fixes) AS fixes, sum(locked) AS locked_fixes FROM v_bike_zone_minute "
                 "WHERE $__timeFilter(minute) GROUP BY time ORDER BY time", kind="timeseries"),
        ch_panel("Busiest zones", "SELECT zone, sum(fixes) AS fixes, max(bikes) AS peak_bikes FROM v_bike_zone_minute "
                 "WHERE $__timeFilter(minute) GROUP BY zone ORDER BY fixes DESC LIMIT 20"),
        ch_panel("Dead letters (latest)", "SELECT received_at, source_topic, reason, detail, left(payload, 120) AS payload "
                 "FROM dead_letters FINAL WHERE $__timeFilter(received_at) ORDER BY received_at DESC LIMIT 100", w=24),
    ])


DASHBOARDS = {"pipeline.json": pipeline}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print("wrote", OUT / name)
