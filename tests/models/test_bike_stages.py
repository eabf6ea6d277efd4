"""Downstream keyed stages: FenceOccupancy (by fence) and FleetCounter (by operator)."""

from __future__ import annotations

import numpy as np

from models.bikes import FenceOccupancy, FirstActive, FleetCounter, OccupancyDelta, Violation
from models.bikes.config import DAY_MS
from models.bikes.ordering import EventTimeBuffer


def summary(events: list[Violation]) -> list[tuple]:
    return [(v.action, v.kind, v.subject_id, v.opened_ts, v.ts, v.count, v.limit) for v in events]


DELTAS = [
    OccupancyDelta("F1", "a", 100, 1), OccupancyDelta("F1", "b", 200, 1), OccupancyDelta("F2", "x", 250, 1),
    OccupancyDelta("F1", "c", 300, 1), OccupancyDelta("F1", "a", 500, -1), OccupancyDelta("F1", "d", 600, 1),
    OccupancyDelta("F1", "b", 700, -1), OccupancyDelta("F1", "e", 700, 1), OccupancyDelta("F1", "c", 900, -1),
]


def test_fence_over_capacity_opens_while_over_and_closes_when_back() -> None:
    occ = FenceOccupancy({"F1": 2, "F2": None}, allowed_lateness_ms=0)
    out = occ.process(DELTAS)
    assert summary(out) == [
        ("open", "fence_over_capacity", "F1", 300, 300, 3, 2),
        ("close", "fence_over_capacity", "F1", 300, 500, 2, 2),
        ("open", "fence_over_capacity", "F1", 600, 600, 3, 2),  # b leaves as e arrives (700): still 3
        ("close", "fence_over_capacity", "F1", 600, 900, 2, 2),
    ]
    assert out[1].time_to_clear_s == 0.2 and out[1].reason == "under_capacity"
    assert (occ.count("F1"), occ.count("F2"), occ.count("F9")) == (2, 1, 0)


def test_fence_stage_is_idempotent_and_independent_of_partition_interleaving() -> None:
    expected = summary(FenceOccupancy({"F1": 2}, 0).process(DELTAS))
    occ = FenceOccupancy({"F1": 2}, allowed_lateness_ms=1000)
    part_a, part_b = DELTAS[::2], DELTAS[1::2]
    got = occ.process(part_b[::-1]) + occ.process(part_a + part_b)  # reversed, then re-delivered
    got += occ.advance_to(10_000)
    assert summary(got) == expected
    assert occ.ignored == len(part_b)


def test_fence_stage_snapshot_round_trip() -> None:
    occ = FenceOccupancy({"F1": 2}, allowed_lateness_ms=250)
    occ.process(DELTAS[:6])
    twin = FenceOccupancy.restore({"F1": 2}, occ.snapshot(), allowed_lateness_ms=250)
    assert summary(occ.process(DELTAS[6:])) == summary(twin.process(DELTAS[6:]))
    assert occ.snapshot() == twin.snapshot()


MARKS = [FirstActive("meituan", b, 0, t) for b, t in [("a", 10), ("b", 20), ("a", 25), ("c", 30), ("d", 40)]]


def test_fleet_counter_opens_over_quota_and_closes_at_day_end() -> None:
    fc = FleetCounter({"meituan": 2, "hellobike": 5}, utc_offset_ms=0, allowed_lateness_ms=0)
    out = fc.process(MARKS + [FirstActive("hellobike", "h", 0, 50), FirstActive("pirate", "p", 0, 60)])
    assert summary(out) == [("open", "over_quota", "meituan", 30, 30, 3, 2)]
    assert fc.counts(0) == {"hellobike": 1, "meituan": 4, "pirate": 1}
    out = fc.advance_to(DAY_MS)
    assert summary(out) == [("close", "over_quota", "meituan", 30, DAY_MS, 4, 2)]
    assert out[0].reason == "day_end"
    fc.advance_to(4 * DAY_MS)  # days long past are forgotten
    assert fc.counts(0) == {}


def test_fleet_counter_order_and_redelivery_do_not_matter() -> None:
    expected = summary(FleetCounter({"meituan": 2}, 0, 0).process(MARKS) + [])
    fc = FleetCounter({"meituan": 2}, utc_offset_ms=0, allowed_lateness_ms=100)
    rng = np.random.default_rng(2)
    shuffled = [MARKS[i] for i in rng.permutation(len(MARKS))]
    got = fc.process(shuffled) + fc.process(MARKS) + fc.advance_to(1000)
    assert summary(got) == expected
    twin = FleetCounter.restore(fc.snapshot(), {"meituan": 2}, 0, 100)
    assert summary(fc.advance_to(DAY_MS)) == summary(twin.advance_to(DAY_MS))


def test_event_time_buffer_counts_late_items_and_releases_in_key_order() -> None:
    buf: EventTimeBuffer[tuple[int, str]] = EventTimeBuffer(key=lambda x: x, allowed_lateness_ms=5)
    assert buf.push([(10, "b"), (10, "a"), (3, "c")]) == [(3, "c")]
    assert buf.advance_to(10) == [(10, "a"), (10, "b")]
    assert buf.push([(9, "late")]) == [(9, "late")] and buf.late == 1
    assert len(buf) == 0 and buf.watermark == 10


def test_a_stale_arrival_after_the_departure_changes_nothing() -> None:
    occ = FenceOccupancy({"F1": 0}, allowed_lateness_ms=0, memory_ms=1000)
    out = occ.process([OccupancyDelta("F1", "a", 100, 1), OccupancyDelta("F1", "a", 500, -1)])
    assert [v.action for v in out] == ["open", "close"]
    assert occ.process([OccupancyDelta("F1", "a", 100, 1)]) == []  # re-delivered, late
    assert occ.count("F1") == 0 and occ.ignored == 1
    # A departure applied before its (late) arrival also keeps that arrival out.
    assert occ.process([OccupancyDelta("F1", "b", 900, -1)]) == []
    assert occ.process([OccupancyDelta("F1", "b", 800, 1)]) == []
    assert occ.count("F1") == 0 and occ.ignored == 3
    occ.advance_to(10_000)  # departures older than memory_ms are forgotten
    assert occ.left["F1"] == {}
