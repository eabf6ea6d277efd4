"""The bike flow end to end on the embedded stack: Tansu broker, worker processes, chDB."""

from __future__ import annotations

import random
import signal
from collections import defaultdict

import numpy as np
import orjson
import pytest
from kafka import KafkaProducer

from models.grid import GridZones
from tests.integration.harness import Stack

pytestmark = pytest.mark.integration

T0 = 1_795_244_400_000  # 2026-11-21T07:00:00Z
BAD = [
    (b"bad-json", b'{"bike_id": "MT-9", "ts": '),
    (b"MT-missing", orjson.dumps({"bike_id": "MT-missing", "operator": "meituan", "lat": 24.5, "lon": 118.1, "locked": True})),
    (b"MT-lat", orjson.dumps({"bike_id": "MT-lat", "operator": "meituan", "ts": T0, "lat": 999, "lon": 118.1, "locked": True})),
    (b"MT-type", orjson.dumps({"bike_id": "MT-type", "operator": "meituan", "ts": T0, "lat": "24.5", "lon": 118.1, "locked": True})),
    # A clock a day ahead of its message's timestamp (T0): stored, it would be a fix row and a zone minute a day
    # later, and move event time a day forward for every bike.
    (b"MT-future", orjson.dumps({"bike_id": "MT-future", "operator": "meituan", "ts": T0 + 86_400_000, "lat": 24.455,
                                 "lon": 118.085, "locked": True})),
]
BAD_REASONS = {"invalid_json", "missing_field", "out_of_range", "wrong_type", "clock_ahead"}


def make_fixes(n_bikes: int = 60, per_bike: int = 30, seed: int = 3) -> list[dict]:
    """Fixes every 20 s per bike, wandering over a few grid cells, in event-time order."""
    rnd = random.Random(seed)
    fixes = []
    for k in range(per_bike):
        for b in range(n_bikes):
            fixes.append({
                "bike_id": f"MT-{b:04d}", "operator": "meituan" if b % 2 else "hellobike",
                "ts": T0 + k * 20_000 + b * 37, "lat": 24.45 + rnd.random() * 0.02, "lon": 118.08 + rnd.random() * 0.02,
                "locked": rnd.random() < 0.4,
            })
    return fixes


def produce(stack: Stack, fixes: list[dict], *, batched_every: int = 3, bad: bool = True) -> None:
    """Produce fixes: mostly one per message (key bike_id), every ``batched_every``-th chunk as an operator batch."""
    p = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    topic = stack.topic("bike.gps")
    chunks = [fixes[i:i + 20] for i in range(0, len(fixes), 20)]
    for i, chunk in enumerate(chunks):
        if batched_every and i % batched_every == 0:
            by_op = defaultdict(list)
            for f in chunk:
                by_op[f["operator"]].append({k: v for k, v in f.items() if k != "operator"})
            for op, items in by_op.items():
                p.send(topic, key=op.encode(), value=orjson.dumps({"operator": op, "fixes": items}),
                       timestamp_ms=max(f["ts"] for f in items))  # sent once its newest fix is in
        else:
            for f in chunk:
                p.send(topic, key=f["bike_id"].encode(), value=orjson.dumps(f), timestamp_ms=f["ts"])
    if bad:
        for key, value in BAD:
            p.send(topic, key=key, value=value, timestamp_ms=T0)
    p.flush()
    p.close()


def expected_zone_minutes(fixes: list[dict]) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(minute epoch s, zone) -> (fixes, distinct bikes, locked) over distinct (bike, ts) fixes."""
    unique = {(f["bike_id"], f["ts"]): f for f in fixes}.values()
    grid = GridZones(500.0)
    lon = np.array([f["lon"] for f in unique])
    lat = np.array([f["lat"] for f in unique])
    zones = grid.cells(lon, lat)
    agg: dict[tuple[int, str], list] = defaultdict(lambda: [0, set(), 0])
    for f, z in zip(unique, zones.tolist(), strict=True):
        a = agg[((f["ts"] // 60_000) * 60, z)]
        a[0] += 1
        a[1].add(f["bike_id"])
        a[2] += f["locked"]
    return {k: (v[0], len(v[1]), v[2]) for k, v in agg.items()}


def read_back(stack: Stack) -> tuple[int, int, dict, list]:
    fixes, raw, zones, dead = stack.query(
        "SELECT count() FROM bike_fixes FINAL",
        "SELECT count() FROM bike_fixes",
        "SELECT toUnixTimestamp(minute), zone, fixes, bikes, locked FROM v_bike_zone_minute",
        "SELECT reason, item, source_topic FROM dead_letters FINAL ORDER BY reason",
    )
    return fixes[0][0], raw[0][0], {(r[0], r[1]): tuple(r[2:]) for r in zones}, dead


def test_fixes_and_dead_letters_land_in_clickhouse(stack: Stack) -> None:
    fixes = make_fixes()
    produce(stack, fixes)
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": len(fixes), "dead_letters": len(BAD)})
    assert worker.metric_sum("citystream_dead_letters_total") == len(BAD)
    assert worker.stop() < 10
    n, _, zones, dead = read_back(stack)
    assert n == len(fixes)
    assert zones == expected_zone_minutes(fixes)
    assert {r[0] for r in dead} == BAD_REASONS
    assert all(r[2] == stack.topic("bike.gps") for r in dead)


def test_replaying_the_same_input_twice_changes_nothing(stack: Stack) -> None:
    fixes = make_fixes(seed=5)
    produce(stack, fixes)
    produce(stack, fixes)  # the same recording again: same fixes, same bad records
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": 2 * len(fixes), "dead_letters": 2 * len(BAD)})
    # Each fix counted once; its copy is a duplicate (or, beyond the lateness horizon of its bike, late).
    assert worker.metric_sum("citystream_bike_fixes_total", outcome="accepted") == len(fixes)
    rejected = sum(worker.metric_sum("citystream_bike_fixes_total", outcome=o) for o in ("duplicate", "late"))
    assert rejected == len(fixes)
    worker.stop()
    n, _, zones, dead = read_back(stack)
    assert n == len(fixes)
    assert zones == expected_zone_minutes(fixes)
    assert len(dead) == len(BAD)


def test_killed_worker_restarts_without_loss_or_double_count(stack: Stack) -> None:
    fixes = make_fixes(n_bikes=80, per_bike=60, seed=7)
    half = len(fixes) // 2
    produce(stack, fixes[:half], bad=False)
    worker = stack.start_worker()
    worker.wait(lambda w: w.metric_sum("citystream_sink_rows_total", table="bike_fixes") > 0, what="first rows")
    worker.stop(signal.SIGKILL)  # mid-stream, no chance to commit or flush
    produce(stack, fixes[half:])
    worker = stack.start_worker()
    worker.wait_drained({"dead_letters": len(BAD)})
    worker.wait(lambda w: w.metric_sum("citystream_consumer_lag") == 0, what="lag 0")
    worker.stop()
    n, _, zones, dead = read_back(stack)
    assert n == len(fixes)
    assert zones == expected_zone_minutes(fixes)
    assert {r[0] for r in dead} == BAD_REASONS


def test_tables_recover_from_changelog_after_restart(stack: Stack) -> None:
    """A second worker must remember, from the changelog alone, which fixes the first one counted."""
    fixes = make_fixes(n_bikes=40, per_bike=20, seed=11)
    first = fixes[: len(fixes) // 2]
    produce(stack, first, bad=False)
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": len(first)})
    worker.stop()
    # Resend everything: the first half again (duplicates only the recovered tables can recognise) + the rest.
    produce(stack, fixes, bad=False)
    worker = stack.start_worker()
    worker.wait_drained({"bike_fixes": len(fixes)})
    assert worker.metric_sum("citystream_bike_fixes_total", outcome="accepted") == len(fixes) - len(first)
    worker.stop()
    _, _, zones, _ = read_back(stack)
    assert zones == expected_zone_minutes(fixes)


def test_worker_stops_within_10s_of_sigterm(stack: Stack) -> None:
    produce(stack, make_fixes(n_bikes=20, per_bike=10), bad=False)
    worker = stack.start_worker()
    worker.wait_ready()
    worker.wait(lambda w: w.metric_sum("citystream_sink_rows_total") > 0, what="work under way")
    took = worker.stop(signal.SIGTERM)
    assert worker.proc.returncode == 0, worker.tail()
    assert took < 10, f"shutdown took {took:.1f}s"
