"""Keyed stages as the stream runs them: per-key state round trips, minute and day rows, ordering by watermark."""

from __future__ import annotations

from models.bikes import FenceOccupancy, FirstActive, FleetCounter, OccupancyDelta
from models.bikes.config import DAY_MS, MINUTE_MS

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


def test_zones_round_trip_through_per_zone_changes() -> None:
    a = FenceOccupancy({"F1": 2}, allowed_lateness_ms=NEVER)
    a.process(DELTAS[:4])
    assert a.advance_to(61_000)[0].action == "open"  # c makes it 3 > 2
    changes = a.drain_changes()
    assert set(changes) == {"F1"} and a.drain_changes() == {}
    b = FenceOccupancy({"F1": 2}, allowed_lateness_ms=NEVER)
    b.import_zones(changes)
    for occ in (a, b):
        occ.drain_minutes()
        occ.process(DELTAS[3:])  # a re-delivered delta and the rest
    assert [(v.action, v.ts) for v in a.advance_to(10**6)] == [(v.action, v.ts) for v in b.advance_to(10**6)] \
        == [("close", 130_000)]
    assert [tuple(m) for m in a.drain_minutes()] == [tuple(m) for m in b.drain_minutes()]


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
