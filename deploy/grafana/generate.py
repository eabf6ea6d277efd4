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


def boards() -> dict[str, Any]:
    """File name -> build function of every board in ``boards/`` (each module: ``FILE`` and ``build(h)``)."""
    import importlib.util
    from types import SimpleNamespace

    helpers = SimpleNamespace(ch_panel=ch_panel, prom_panel=prom_panel, dashboard=dashboard, CH=CH, PROM=PROM)
    out = {}
    for path in sorted((Path(__file__).parent / "boards").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"citystream_board_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out[module.FILE] = lambda m=module: m.build(helpers)
    return out




def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in boards().items()}


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print("wrote", OUT / name)
