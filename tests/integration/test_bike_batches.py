"""Operator batches (``{"operator": .., "fixes": [..]}`` keyed by operator) through the embedded pipeline give
exactly the pure model's violations, even when the ingest reads its partitions in small, uneven slices (it
hands fixes over in event-time order across its partitions: ``streams/ingest_batch.py`` ``release``), and when two
stream workers read ``bike.gps`` at different paces (each bike partition's event time is the minimum over the
``bike.gps`` partitions that feed it: ``models/source_clock.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citystream.bikes_eval import read_fix_batches, supervise
from citystream.config import Settings
from replay.recording import Recording
from replay.simulate import simulate
from streams.agents.bikes_geo import load_bike_setup
from streams.agents.bikes_rows import output_rows
from tests.integration.test_bikes import ROWS, make_stack, replay

pytestmark = pytest.mark.integration


PER_BIKE = ("no_parking", "outside_fence", "zombie", "black_bike")  # the others are the keyed stages'


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out = tmp_path_factory.mktemp("batches") / "rec"
    simulate(out, hours=0.5, bikes=300, sensors=0, seed=2, incidents_per_hour=0, batch_operator_fixes=True)
    return Recording.open(out)


@pytest.fixture(scope="module")
def expected(recording: Recording) -> dict[str, tuple]:
    """violation_id -> (status, closed ms) of the per-bike violations, from the pure model."""
    setup = load_bike_setup(Settings(geography=recording.path / "geography.geojson"))
    events, stats = supervise(read_fix_batches(recording), setup.config, setup.index, partitions=4)
    out = {}
    for r in output_rows(events):
        if r["t"] == "violation":
            out[r["violation_id"]] = (r["status"], r["closed_ms"] or None)
    assert stats["behind_watermark"] == 0 and out
    return out


def test_operator_batches_read_in_uneven_slices_give_exactly_the_models_violations(
        broker_url: str, tmp_path: Path, recording: Recording, expected: dict[str, tuple]) -> None:
    stack = make_stack(broker_url, tmp_path / "s", "ob", recording)
    stack.extra_env["CITYSTREAM_INGEST_BATCH_SIZE"] = "7"  # a few operator batches per getmany, partitions uneven
    try:
        fixes = replay(stack, recording, None)
        worker = stack.start_worker()
        rows = sum(2 if status == "closed" else 1 for status, _ in expected.values())
        worker.wait_drained({"bike_fixes": fixes, "bike_violations": rows}, timeout=240)
        worker.stop()
        got = stack.query(*ROWS)[0]
    finally:
        stack.close()
    assert {r[0]: (r[5], r[8]) for r in got if r[1] in PER_BIKE} == expected


def test_two_stream_workers_reading_at_different_paces_give_exactly_the_models_violations(
        broker_url: str, tmp_path: Path, recording: Recording, expected: dict[str, tuple]) -> None:
    """Two ingest consumers share ``bike.gps``, one taking 50 messages a fetch and one 2, so one runs far ahead
    of the other; both feed every bike partition. Without the per-source clock the slow one's fixes fell behind
    the event time the fast one set, and rows depended on the pace."""
    stack = make_stack(broker_url, tmp_path / "s", "two", recording)
    try:
        fixes = replay(stack, recording, None)
        sinks = stack.start_worker("sinks", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-sinks"))
        fast = stack.start_worker("streams", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-1"),
                                  CITYSTREAM_INGEST_BATCH_SIZE="50")
        slow = stack.start_worker("streams", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-2"),
                                  CITYSTREAM_INGEST_BATCH_SIZE="2")
        rows = sum(2 if status == "closed" else 1 for status, _ in expected.values())
        sinks.wait_drained({"bike_fixes": fixes, "bike_violations": rows}, timeout=240, others=(fast, slow))
        def total(name: str, **labels: str) -> float:
            return sum(w.metric_sum(name, **labels) for w in (fast, slow))
        assert total("citystream_bike_supervisor_fixes_total", outcome="applied") > 0
        assert total("citystream_bike_supervisor_fixes_total", outcome="behind_watermark") == 0
        assert total("citystream_bike_supervision", measure="sources_waiting") == 0
        for w in (fast, slow, sinks):
            w.stop()
        got = stack.query(*ROWS)[0]
    finally:
        stack.close()
    assert {r[0]: (r[5], r[8]) for r in got if r[1] in PER_BIKE} == expected
