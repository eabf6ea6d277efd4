"""Replay, recording and importers against the embedded stack."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from replay.importers import import_dcic
from replay.produce import produce_recording
from replay.record import record_topics
from replay.recording import Recording
from replay.simulate import simulate
from streams.topics import FEEDS, ensure_topics
from tests.integration.harness import Stack

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHARED_LOCKS = ROOT.parent / "shared" / "data" / "xiamen_bikes" / "lock_events_2020-12-21.csv"


def replay_into(stack: Stack, rec: Recording, speed: float | None, feeds: list[str] | None = None) -> dict:
    from citystream.config import Settings

    settings = Settings(broker=stack.broker_url, topic_prefix=stack.prefix, partitions=stack.partitions)
    ensure_topics(settings)
    stats = produce_recording(stack.bootstrap, rec.merged(feeds), lambda f: stack.topic(FEEDS[f]), speed=speed)
    return stats.sent


def per_key(messages: list) -> dict[tuple[str, str | None], list[tuple[int, bytes]]]:
    out: dict[tuple[str, str | None], list[tuple[int, bytes]]] = defaultdict(list)
    for m in messages:
        out[(m.feed, m.key)].append((m.ts, m.value))
    return dict(out)


@pytest.fixture(scope="module")
def small_recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out = tmp_path_factory.mktemp("sim") / "rec"
    simulate(out, hours=0.1, bikes=150, sensors=10, seed=3, incidents_per_hour=30)
    return Recording.open(out)


def test_record_then_replay_round_trip_is_exact(stack: Stack, small_recording: Recording, tmp_path: Path) -> None:
    sent = replay_into(stack, small_recording, None)
    assert sum(sent.values()) == small_recording.records
    captured = tmp_path / "captured"
    stats = record_topics(stack.bootstrap, {f: stack.topic(FEEDS[f]) for f in small_recording.feeds}, captured,
                          from_beginning=True, idle_stop_s=3.0)
    assert stats.total == small_recording.records
    again = Recording.open(captured)
    original, copy = list(small_recording.merged()), list(again.merged())
    assert per_key(copy) == per_key(original)  # keys, values (bytes), timestamps and per-key order
    assert again.first_ts == small_recording.first_ts and again.last_ts == small_recording.last_ts


def test_speed_max_and_speed_60_give_identical_aggregates(broker_url: str, tmp_path: Path,
                                                          small_recording: Recording) -> None:
    results = []
    fixes = sum(1 for m in small_recording.iter_feed("bike_gps"))
    for speed in (None, 60.0):
        stack = Stack(broker_url=broker_url, bootstrap=broker_url.removeprefix("kafka://"),
                      tmp=tmp_path / f"speed-{speed}", prefix=f"speed{int(speed or 0)}{tmp_path.name[-6:]}")
        stack.tmp.mkdir()
        try:
            worker = stack.start_worker()
            worker.wait_ready()
            replay_into(stack, small_recording, speed, ["bike_gps"])  # the worker consumes while it plays
            worker.wait_drained({"bike_fixes": fixes})
            worker.stop()
        finally:
            stack.close()
        results.append(stack.query(
            "SELECT toString(minute), zone, fixes, bikes, locked FROM v_bike_zone_minute ORDER BY minute, zone",
            "SELECT count(), sum(cityHash64(bike_id, ts, lat, lon, locked)) FROM bike_fixes FINAL",
            "SELECT reason, count() FROM dead_letters FINAL GROUP BY reason ORDER BY reason",
        ))
    assert results[0][0], "no aggregates"
    assert results[0] == results[1]


def _import_and_run(stack: Stack, csv_paths: list[Path], tmp_path: Path) -> tuple[int, list]:
    summary = import_dcic(csv_paths, tmp_path / "dcic")
    rec = Recording.open(tmp_path / "dcic")
    replay_into(stack, rec, None)
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": rec.records}, timeout=240)
    assert worker.metric_sum("citystream_dead_letters_total") == 0
    worker.stop()
    n, dead = stack.query("SELECT count() FROM bike_fixes FINAL", "SELECT reason, detail FROM dead_letters FINAL")
    assert summary.records == rec.records
    return n[0][0], dead


def test_dcic_fixture_is_consumed_without_dead_letters(stack: Stack, tmp_path: Path) -> None:
    fixture = ROOT / "tests" / "fixtures" / "dcic_small"
    n, dead = _import_and_run(stack, sorted(fixture.glob("*.csv")), tmp_path)
    assert n > 0 and dead == []


@pytest.mark.skipif(not SHARED_LOCKS.exists(), reason=f"reference data absent: {SHARED_LOCKS} (needs ../shared)")
def test_real_dcic_lock_events_are_consumed_without_dead_letters(stack: Stack, tmp_path: Path) -> None:
    n, dead = _import_and_run(stack, [SHARED_LOCKS], tmp_path)
    assert dead == []
    assert n > 38_000  # 38,468 lock events; a bike locked twice in the same minute is one fix (same bike, same ts)


def test_replay_command_announces_the_end_on_every_incident_partition(stack: Stack, small_recording: Recording) -> None:
    import os
    import subprocess
    import sys

    import orjson
    from kafka import KafkaConsumer, TopicPartition

    env = {**os.environ, "CITYSTREAM_TOPIC_PREFIX": stack.prefix, "CITYSTREAM_PARTITIONS": str(stack.partitions)}
    subprocess.run([sys.executable, "-m", "citystream.cli", "replay", str(small_recording.path), "--feeds",
                    "incident_events", "--broker", stack.broker_url], env=env, check=True, timeout=120,
                   capture_output=True)
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest")
    tps = [TopicPartition(stack.topic("incident.events"), p) for p in range(stack.partitions)]
    consumer.assign(tps)
    last: dict[int, dict] = {}
    cases = 0
    while batch := consumer.poll(timeout_ms=1500):
        for tp, msgs in batch.items():
            for m in msgs:
                doc = orjson.loads(m.value)
                last[tp.partition] = doc
                cases += "case_id" in doc
    consumer.close()
    assert cases == small_recording.manifest["feeds"]["incident_events"]["records"]
    assert last == {p: {"heartbeat": True, "ts": small_recording.last_ts} for p in range(stack.partitions)}
