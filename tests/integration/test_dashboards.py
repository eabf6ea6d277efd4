"""Every ClickHouse panel query of every provisioned dashboard runs against the embedded engine, after a
replay through the pipeline, and returns rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.harness import Stack
from tests.integration.test_bike_pipeline import BAD, make_fixes, produce

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if "rawSql" in target:
                    out.append((path.stem, panel["title"], target["rawSql"]))
    return out


def expand_macros(sql: str, start_s: int, end_s: int) -> str:
    """Grafana ClickHouse plugin macros, for a fixed time range."""
    frm, to = f"toDateTime({start_s})", f"toDateTime({end_s})"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 >= {frm} AND \1 <= {to}", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)", r"toStartOfInterval(\1, INTERVAL 60 second)", sql)
    return sql.replace("$__fromTime", frm).replace("$__toTime", to).replace("$__interval_s", "60")


def test_every_dashboard_query_returns_rows(stack: Stack) -> None:
    fixes = make_fixes(n_bikes=30, per_bike=10)
    produce(stack, fixes)
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": len(fixes), "dead_letters": len(BAD)})
    worker.stop()
    queries = panel_queries()
    assert queries
    start = min(f["ts"] for f in fixes) // 1000 - 3600
    end = max(f["ts"] for f in fixes) // 1000 + 3600
    results = stack.query(*(expand_macros(sql, start, end) for _, _, sql in queries))
    empty = [f"{board}: {title}" for (board, title, _), rows in zip(queries, results, strict=True) if not rows]
    assert not empty, f"panels without rows: {empty}"
