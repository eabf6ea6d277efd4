"""Every ClickHouse panel query of every provisioned dashboard runs against the embedded engine, after a
replay through the pipeline, and returns rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from citystream.config import Settings
from replay.produce import produce_recording
from replay.recording import Recording
from streams.topics import FEEDS, ensure_topics
from tests.deploy.promql import matches, parse, prometheus_exprs
from tests.integration.harness import Stack
from tests.integration.test_bike_pipeline import BAD, make_fixes, produce
from tests.integration.test_incidents import produce_sample_incidents
from tests.integration.test_sensors import send as send_readings
from tests.integration.test_sensors import tilt

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
    # The bundled sample's bike feed, for the Bikes board (violations need a whole simulated fleet),
    # first: it is older than the hand-made fixes, and event time only moves forward per partition.
    bikes = Recording.open(ROOT / "replay" / "sample")
    ensure_topics(Settings(broker=stack.broker_url, topic_prefix=stack.prefix, partitions=stack.partitions))
    bike_fixes = sum(produce_recording(stack.bootstrap, bikes.merged(["bike_gps"]),
                                       lambda f: stack.topic(FEEDS[f])).sent.values())
    fixes = make_fixes(n_bikes=30, per_bike=10)
    produce(stack, fixes)
    incidents = produce_sample_incidents(stack)  # the bundled sample's cases, for the Incidents board
    readings = [tilt(i, 0.8 + 0.01 * (i % 3), f"TILT-{j:04d}") for i in range(30) for j in range(3)]
    readings += [tilt(30, 6.5, "TILT-0000")]  # a breach left open, for the Sensors board's open alerts
    send_readings(stack, readings)
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": len(fixes) + bike_fixes, "dead_letters": len(BAD), "bike_violations": 1,
                         "incident_transitions": incidents.transitions, "sensor_readings": len(readings),
                         "sensor_alerts": 1})
    series = worker.metrics()
    worker.stop()
    # Every selector of the alerting rules and the Prometheus panels picks series this worker exports (label
    # values included: a topic pattern, a measure, an outcome), apart from Prometheus's own ``up``.
    unmatched = [(where, name, matchers) for where, expr in prometheus_exprs() for name, matchers in parse(expr)[0]
                 if name != "up" and not any(n == name and matches(dict(labels), matchers) for n, labels in series)]
    assert not unmatched, f"selectors without a series: {unmatched}"
    queries = panel_queries()
    assert queries
    start = min(min(f["ts"] for f in fixes) // 1000, incidents.start_s, readings[0]["ts"] // 1000,
                (bikes.first_ts or 0) // 1000) - 3600
    end = max(max(f["ts"] for f in fixes) // 1000, incidents.end_s, readings[-1]["ts"] // 1000,
              (bikes.last_ts or 0) // 1000) + 3600
    results = stack.query(*(expand_macros(sql, start, end) for _, _, sql in queries))
    empty = [f"{board}: {title}" for (board, title, _), rows in zip(queries, results, strict=True) if not rows]
    assert not empty, f"panels without rows: {empty}"
