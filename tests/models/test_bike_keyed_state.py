"""Keyed stages as the stream runs them: per-key state round trips, minute and day rows, ordering by watermark."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from models.bikes import FenceOccupancy, FirstActive, FleetCounter, OccupancyDelta
from models.bikes.config import DAY_MS, MINUTE_MS
from tests.models.test_zone_counts_fast import apply

NEVER = 1 << 62  # driven by advance_to alone, as streams/agents/bikes.py does
DELTAS = [OccupancyDelta("F1", b, t, d) for b, t, d in
          [("a", 1_000, 1), ("b", 2_000, 1), ("c", 61_000, 1), ("a", 62_000, -1), ("d", 62_000, 1), ("b", 130_000, -1)]]


def test_minute_rows_carry_end_count_peak_and_a_growing_version() -> None:
    occ = FenceOccupancy({"F1": 2}, allowed_lateness_ms=0)
    occ.process(DELTAS[:2])
    first = [(m.minute_ts, m.bikes, m.peak, m.version) for m in occ.drain_minutes()]
    assert first == [(0, 2, 2, 2)]  # minute 0: 1 then 2 bikes; only its newest row goes out (version 2 replaces 1)
    occ.process(DELTAS[2:])
    rows = [(m.minute_ts, m.bikes, m.peak, m.version) for m in occ.drain_minutes()]
    # minute 1: c arrives (3), a leaves while d arrives (a swap: still 3); minute 2: b leaves. The version grows
    # across calls, so a minute's row sent later replaces the one sent before.
    assert rows == [(MINUTE_MS, 3, 3, 4), (2 * MINUTE_MS, 2, 3, 5)]
    assert occ.drain_minutes() == []


def _changelog(writes: list[tuple[bytes, bytes | None]], log: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    """A compacted changelog after ``writes`` (in order; None deletes)."""
    table = dict(log or {})
    apply(table, writes)
    return table


def test_zones_round_trip_through_per_bike_entries() -> None:
    a = FenceOccupancy({"F1": 2}, allowed_lateness_ms=NEVER)
    a.process(DELTAS[:4])
    assert a.advance_to(61_000)[0].action == "open"  # c makes it 3 > 2
    writes = a.drain_entries()
    # a, b, c per bike (the bikes first), then the zone's head; nothing more until something changes
    assert [orjson.loads(k) for k, _ in writes] == [["F1", "a"], ["F1", "b"], ["F1", "c"], ["F1"]]
    assert a.drain_entries() == []
    b = FenceOccupancy({"F1": 2}, allowed_lateness_ms=NEVER)
    b.import_entries(_changelog(writes))
    assert b.export_zones(["F1"]) == a.export_zones(["F1"])
    for occ in (a, b):
        occ.drain_minutes()
        occ.process(DELTAS[3:])  # a re-delivered delta and the rest
    assert [(v.action, v.ts) for v in a.advance_to(10**6)] == [(v.action, v.ts) for v in b.advance_to(10**6)] \
        == [("close", 130_000)]
    assert [tuple(m) for m in a.drain_minutes()] == [tuple(m) for m in b.drain_minutes()]


def test_a_change_writes_its_bike_and_its_zone_not_the_zone_s_whole_set() -> None:
    occ = FenceOccupancy({"FRA": None}, allowed_lateness_ms=NEVER)
    occ.process([OccupancyDelta("FRA", f"b{i}", 1_000 + i, 1) for i in range(5_000)])
    occ.advance_to(10_000)
    assert len(occ.drain_entries()) == 5_001
    occ.process([OccupancyDelta("FRA", "b7", 20_000, -1), OccupancyDelta("FRA", "new", 20_000, 1)])
    occ.advance_to(30_000)
    writes = occ.drain_entries()
    assert [orjson.loads(k) for k, _ in writes] == [["FRA", "b7"], ["FRA", "new"], ["FRA"]]
    assert sum(len(k) + len(v or b"") for k, v in writes) < 200  # the whole-zone entry was ~100 KB


def _stream(seed: int) -> list[tuple[list[OccupancyDelta], int]]:
    """Batches of deltas (parkings and departures of 40 bikes in 3 zones, a few re-delivered) and the watermark
    each batch advances to."""
    rng = random.Random(seed)
    where: dict[str, str | None] = {f"b{i}": None for i in range(40)}
    batches, t = [], 0
    for _ in range(30):
        deltas = []
        for _ in range(rng.randint(0, 12)):
            t += rng.randint(0, 4_000)
            b = rng.choice(sorted(where))
            if where[b] is None:
                where[b] = rng.choice(["F1", "F2", "FRA"])
                deltas.append(OccupancyDelta(where[b], b, t, 1))
            else:
                deltas.append(OccupancyDelta(where[b], b, t, -1))
                where[b] = None
            if rng.random() < 0.1:
                deltas.append(deltas[-1])  # re-delivered
        batches.append((deltas, t))
    return batches


def _stage() -> FenceOccupancy:
    return FenceOccupancy({"F1": 3, "F2": 2}, allowed_lateness_ms=NEVER, memory_ms=20_000)


def _zones(occ: FenceOccupancy, zones: list[str]) -> dict[str, Any]:
    """The zones' state, whatever order their bikes were loaded in."""
    docs = {z: orjson.loads(v) for z, v in occ.export_zones(zones).items()}
    return {z: {**d, "parked": sorted(d["parked"].items()), "left": sorted(d["left"].items())} for z, d in docs.items()}


def _run(occ: FenceOccupancy, deltas: list[OccupancyDelta], wm: int) -> tuple[list, list]:
    out = occ.process(deltas) + occ.advance_to(wm)
    return [(v.action, v.subject_id, v.ts) for v in out], [tuple(m) for m in occ.drain_minutes()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_crash_in_the_middle_of_a_state_write_loses_and_changes_nothing(seed: int) -> None:
    """Each prefix of each state write, loaded and the write's items applied again (as the keyed stage does after a
    restart: its waiting entries are deleted only after the state), gives the uninterrupted run's zones, and only
    rows and violations that run emitted for that batch (a minute row with its version)."""
    batches = _stream(seed)
    whole = _stage()
    logs, writes, emitted = [{}], [], []
    for deltas, wm in batches:
        emitted.append(_run(whole, deltas, wm))
        writes.append(whole.drain_entries())
        logs.append(_changelog(writes[-1], logs[-1]))
    zones = sorted(set(whole.parked) | set(whole.left))
    checked = 0
    for k, (deltas, wm) in enumerate(batches):
        for cut in range(len(writes[k]) + 1):
            occ = _stage()
            occ.import_entries(_changelog(writes[k][:cut], logs[k]))
            violations, minutes = _run(occ, deltas, wm)
            assert set(violations) <= set(emitted[k][0]) and set(minutes) <= set(emitted[k][1]), (k, cut)
            for later in range(k + 1, len(batches)):  # and it goes on exactly as the uninterrupted run
                occ.drain_entries()
                assert _run(occ, *batches[later]) == emitted[later], (k, cut, later)
            assert _zones(occ, zones) == _zones(whole, zones)
            checked += 1
    assert checked > 100


def test_whole_zone_entries_of_earlier_versions_load_and_are_rewritten_per_bike() -> None:
    a = _stage()
    for deltas, wm in _stream(4)[:10]:
        _run(a, deltas, wm)
    a.drain_entries()
    zones = sorted(set(a.parked) | set(a.left))
    old = {z.encode(): v for z, v in a.export_zones(zones).items()}  # what earlier versions wrote, per zone
    b = _stage()
    b.import_entries(old)
    assert _zones(b, zones) == _zones(a, zones)
    writes = b.drain_entries()
    assert [k for k, v in writes if v is None] == sorted(old)  # the old keys go, after the per-bike entries
    c = _stage()
    c.import_entries(_changelog(writes, old))
    assert _zones(c, zones) == _zones(a, zones)
    for deltas, wm in _stream(4)[10:]:
        assert _run(c, deltas, wm) == _run(a, deltas, wm)


def test_nothing_applies_before_the_watermark_then_in_key_order() -> None:
    occ = FenceOccupancy({"F1": 1}, allowed_lateness_ms=NEVER)
    assert occ.process(list(reversed(DELTAS))) == [] and occ.count("F1") == 0
    assert [v.action for v in occ.advance_to(2_000)] == ["open"] and occ.watermark == 2_000
    assert occ.process([OccupancyDelta("F1", "z", 1_500, 1)]) == [] and occ.late == 1  # behind: applied at once


def test_fleet_changes_are_per_bike_and_per_open_violation_and_restore() -> None:
    fc = FleetCounter({"meituan": 1}, utc_offset_ms=0, allowed_lateness_ms=NEVER)
    marks = [FirstActive("meituan", "a", 0, 10), FirstActive("meituan", "b", 0, 20), FirstActive("qingju", "q", 0, 30)]
    fc.process(marks)
    assert [v.kind for v in fc.advance_to(100)] == ["over_quota"]
    # The newest count per operator and day (the version its table keeps), not one row per bike.
    assert [(d.operator, d.bikes, d.quota) for d in fc.drain_days()] == [("meituan", 2, 1), ("qingju", 1, None)]
    changes = fc.drain_changes()
    assert len(changes) == 4 and all(v is not None for v in changes.values())  # 3 bikes + 1 open violation
    twin = FleetCounter({"meituan": 1}, utc_offset_ms=0, allowed_lateness_ms=NEVER)
    twin.import_entries({k: v for k, v in changes.items() if v is not None})
    assert twin.counts(0) == fc.counts(0) == {"meituan": 2, "qingju": 1}
    assert [(v.action, v.ts) for v in twin.advance_to(DAY_MS)] == [(v.action, v.ts) for v in fc.advance_to(DAY_MS)] \
        == [("close", DAY_MS)]
    fc.advance_to(4 * DAY_MS)  # the day is forgotten: its entries are deleted
    assert set(fc.drain_changes().values()) == {None}
