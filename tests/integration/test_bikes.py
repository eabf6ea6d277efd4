"""Bike supervision end to end on the embedded stack: identical rows at any replay speed, exact after kill -9,
and the same when the work is spread over several worker processes.

The reference for the bike violations is the pure model itself: the recording's fixes through one
``BikeSupervisor`` per partition (split like ``validate_fixes`` does), without the final flush the stream
cannot do (its event time stops ``allowed_lateness`` behind the newest fix).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from citystream.bikes_eval import read_fix_batches, supervise
from citystream.config import Settings
from replay.produce import produce_recording
from replay.recording import Recording
from replay.simulate import simulate
from streams.agents.bikes_geo import load_bike_setup
from streams.agents.bikes_rows import output_rows
from streams.topics import FEEDS, ensure_topics
from tests.integration.harness import Stack

pytestmark = pytest.mark.integration

ROWS = (
    "SELECT violation_id, kind, subject_id, operator, zone_id, status, toUnixTimestamp64Milli(opened_at), "
    "toUnixTimestamp64Milli(reported_at), toUnixTimestamp64Milli(closed_at), time_to_clear_s, close_reason, "
    "distance_m, measured, allowed FROM bike_violations FINAL ORDER BY violation_id",
    "SELECT bike_id, kind, toUnixTimestamp64Milli(ts) FROM bike_gps_faults FINAL ORDER BY ALL",
    "SELECT bike_id, toUnixTimestamp64Milli(parked_at), toUnixTimestamp64Milli(decided_at), place, zone_id, "
    "distance_m FROM bike_parkings FINAL ORDER BY ALL",
    "SELECT toUnixTimestamp(minute), zone_id, bikes, peak, capacity FROM bike_zone_occupancy FINAL ORDER BY ALL",
    "SELECT toString(day), operator, bikes, quota FROM bike_fleet_day FINAL ORDER BY ALL",
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out = tmp_path_factory.mktemp("bikes") / "rec"
    simulate(out, hours=0.5, bikes=300, sensors=0, seed=1, incidents_per_hour=0)
    return Recording.open(out)


@pytest.fixture(scope="module")
def expected(recording: Recording) -> dict[str, tuple]:
    """violation_id -> (status, closed ms) of the bike violations, from the pure model."""
    setup = load_bike_setup(Settings(geography=recording.path / "geography.geojson"))
    events, _ = supervise(read_fix_batches(recording), setup.config, setup.index, partitions=4)
    newest: dict[str, tuple] = {}
    for r in output_rows(events):
        if r["t"] == "violation":
            newest[r["violation_id"]] = (r["status"], r["closed_ms"] or None)
    return newest


def make_stack(broker_url: str, tmp: Path, name: str, rec: Recording) -> Stack:
    tmp.mkdir()
    return Stack(broker_url=broker_url, bootstrap=broker_url.removeprefix("kafka://"), tmp=tmp,
                 prefix=f"{name}{tmp.parent.name[-6:]}",
                 extra_env={"CITYSTREAM_GEOGRAPHY": str(rec.path / "geography.geojson")})


def replay(stack: Stack, rec: Recording, speed: float | None, from_ts: int | None = None,
           to_ts: int | None = None) -> int:
    settings = Settings(broker=stack.broker_url, topic_prefix=stack.prefix, partitions=stack.partitions)
    ensure_topics(settings)
    stats = produce_recording(stack.bootstrap, rec.merged(["bike_gps"], from_ts, to_ts),
                              lambda f: stack.topic(FEEDS[f]), speed=speed)
    return sum(stats.sent.values())


def drain_and_read(stack: Stack, rows: dict[str, int]) -> list[list[list[object]]]:
    """Wait until the last worker stored at least ``rows`` (per table) and every lag is 0; read back."""
    worker = stack.workers[-1]
    worker.wait_drained(rows, timeout=180)
    worker.stop()
    return stack.query(*ROWS)


def same_rows(a: list[list[list[object]]], b: list[list[list[object]]]) -> None:
    for name, x, y in zip(("violations", "faults", "parkings", "occupancy", "fleet"), a, b, strict=True):
        gone = [r for r in x if r not in y]
        new = [r for r in y if r not in x]
        assert not gone and not new, f"{name}: {len(gone)} rows only in the reference {gone[:5]}, {len(new)} only here {new[:5]}"


def violation_events(expected: dict[str, tuple]) -> int:
    return sum(2 if status == "closed" else 1 for status, _ in expected.values())


@pytest.fixture(scope="module")
def reference(broker_url: str, tmp_path_factory: pytest.TempPathFactory, recording: Recording,
              expected: dict[str, tuple]) -> list[list[list[object]]]:
    """All bike rows after replaying the recording at full speed into a fresh pipeline."""
    stack = make_stack(broker_url, tmp_path_factory.mktemp("max") / "s", "max", recording)
    try:
        fixes = replay(stack, recording, None)
        stack.start_worker()
        return drain_and_read(stack, {"bike_fixes": fixes, "bike_violations": violation_events(expected)})
    finally:
        stack.close()


def test_violations_are_exactly_the_models(reference: list, expected: dict[str, tuple]) -> None:
    got = {r[0]: (r[5], r[8]) for r in reference[0] if r[1] in ("no_parking", "outside_fence", "zombie", "black_bike")}
    assert got == expected  # none lost, none duplicated, none left open by mistake
    kinds = {r[1] for r in reference[0]}
    assert {"no_parking", "outside_fence", "black_bike"} <= kinds, kinds
    assert all(rows for rows in reference[1:] if rows is not reference[1]), "parkings, occupancy, fleet rows"


def test_speed_60_gives_the_same_rows_as_speed_max(broker_url: str, tmp_path: Path, recording: Recording,
                                                   reference: list, expected: dict[str, tuple]) -> None:
    stack = make_stack(broker_url, tmp_path / "s", "s60", recording)
    try:
        worker = stack.start_worker()
        worker.wait_ready()
        fixes = replay(stack, recording, 60.0)  # the worker consumes while it plays
        got = drain_and_read(stack, {"bike_fixes": fixes, "bike_violations": violation_events(expected)})
    finally:
        stack.close()
    same_rows(reference, got)


def test_kill_9_mid_replay_then_restart_loses_and_duplicates_nothing(
        broker_url: str, tmp_path: Path, recording: Recording, reference: list, expected: dict[str, tuple]) -> None:
    stack = make_stack(broker_url, tmp_path / "s", "kill", recording)
    mid = (recording.first_ts + recording.last_ts) // 2  # type: ignore[operator]
    try:
        replay(stack, recording, None, to_ts=mid)
        worker = stack.start_worker()
        worker.wait(lambda w: w.metric_sum("citystream_sink_rows_total", table="bike_violations") > 0,
                    timeout=120, what="first violations")
        worker.stop(signal.SIGKILL)  # mid-stream: no commit, no flush
        rest = replay(stack, recording, None, from_ts=mid)
        stack.start_worker()
        got = drain_and_read(stack, {"bike_fixes": rest})  # at least the second half is the new worker's
    finally:
        stack.close()
    same_rows(reference, got)


def test_scaled_out_two_stream_workers_and_a_sink_worker_give_the_same_rows(
        broker_url: str, tmp_path: Path, recording: Recording, reference: list, expected: dict[str, tuple]) -> None:
    """Scaling out is more workers on the partitions: two ``--role streams`` workers share them (the second
    joins while the first is at work: a rebalance mid-stream, standby replicas on), and one ``--role sinks``
    worker writes ClickHouse."""
    stack = make_stack(broker_url, tmp_path / "s", "scale", recording)
    try:
        fixes = replay(stack, recording, None)
        sinks = stack.start_worker("sinks", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-sinks"))
        first = stack.start_worker("streams", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-1"))
        first.wait(lambda w: w.metric_sum("citystream_records_out_total") > 0, timeout=120, what="first outputs")
        second = stack.start_worker("streams", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-2"))
        second.wait_ready()
        sinks.wait_drained({"bike_fixes": fixes, "bike_violations": violation_events(expected)}, timeout=240,
                           others=(first, second))
        assert first.metric_sum("citystream_assigned_partitions") > 0, "the first worker kept a share"
        for w in (first, second, sinks):
            w.stop()
        got = stack.query(*ROWS)
    finally:
        stack.close()
    same_rows(reference, got)


@pytest.mark.skip(reason="known failover gaps (docs/architecture.md, 'Determinism and its limits'): after session 15's "
                         "fix (models kept across rebalances) 1 of 3 runs still lacked a few fixes' outputs from the "
                         "first seconds after the kill")
def test_a_stream_worker_killed_while_another_runs_loses_and_duplicates_nothing(
        broker_url: str, tmp_path: Path, recording: Recording, reference: list, expected: dict[str, tuple]) -> None:
    """Failover without a restart: of two ``--role streams`` workers, one is killed with SIGKILL mid-replay and never
    comes back; the other takes its partitions over (their state from the changelogs and its standby copies) and
    the rest of the recording, played at 10x while it runs. The rows should be the uninterrupted run's; they are
    not always yet (the skip reason), so the test is kept to reproduce that, not run.

    Why not at full speed: until the group notices the death (the session timeout, plus the rebalance), nobody reads
    the dead worker's ``bike.gps`` partitions, and their last marks may say "read to its end" (they were, before the
    rest was played), so the other sources move every supervisor's event time on. At 10x the few seconds of that gap
    are a minute or two of event time, within the allowed lateness (5 min); at full speed they are the whole rest of
    the recording, whose fixes from those partitions then come behind the watermark (see docs/architecture.md,
    "Determinism and its limits")."""
    stack = make_stack(broker_url, tmp_path / "s", "failover", recording)
    mid = (recording.first_ts + recording.last_ts) // 2  # type: ignore[operator]
    try:
        replay(stack, recording, None, to_ts=mid)
        sinks = stack.start_worker("sinks", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-sinks"))
        doomed = stack.start_worker("streams", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-1"))
        survivor = stack.start_worker("streams", CITYSTREAM_DATA_DIR=str(stack.tmp / "var-2"))
        survivor.wait_ready()
        doomed.wait(lambda w: w.metric_sum("citystream_assigned_partitions") > 0
                    and w.metric_sum("citystream_records_out_total") > 0, timeout=120, what="a share of the work")
        sinks.wait(lambda w: w.metric_sum("citystream_sink_rows_total", table="bike_violations") > 0,
                   timeout=120, what="first violations")
        doomed.stop(signal.SIGKILL)  # mid-stream: no commit, no flush, no leave-group
        rest = replay(stack, recording, 10.0, from_ts=mid)
        sinks.wait_drained({"bike_fixes": rest, "bike_violations": violation_events(expected)}, timeout=240,
                           others=(survivor,))
        assert survivor.metric_sum("citystream_assigned_partitions") > 0
        for w in (survivor, sinks):
            w.stop()
        got = stack.query(*ROWS)
    finally:
        stack.close()
    same_rows(reference, got)
