"""BikeSupervisor rules: each violation opens and closes at the right event times."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from models.bikes import (
    BikeSupervisor,
    Event,
    FenceOccupancy,
    FirstActive,
    GpsFault,
    OccupancyDelta,
    SupervisionConfig,
    Violation,
)
from models.bikes.config import DAY_MS
from models.geo import LocalProjection, Zone, ZoneIndex
from models.gps import FixBatch

P = LocalProjection(118.1, 24.5)
MIN = 60_000
T0 = 1_608_508_800_000  # 2020-12-21 00:00 UTC = 08:00 in Xiamen


def rect(zone_id: str, kind: str, x0: float, y0: float, x1: float, y1: float,
         capacity: int | None = None) -> Zone:
    lon, lat = P.inverse([x0, x1], [y0, y1])
    return Zone(zone_id, kind, zone_id, shapely.box(lon[0], lat[0], lon[1], lat[1]), capacity)


INDEX = ZoneIndex([
    rect("F1", "parking_fence", 0, 0, 6, 2, capacity=2),
    rect("NP", "no_parking", 100, 100, 140, 140),
    rect("AREA", "fence_required_area", -500, -500, 500, 500),
    rect("SA", "service_area", -2000, -2000, 2000, 2000),
], projection=P)


def fix(bike: str, t_ms: int, x: float, y: float, locked: bool, op: str = "meituan"
        ) -> tuple[str, str, int, float, float, bool]:
    lon, lat = P.inverse(x, y)
    return (bike, op, T0 + t_ms, float(lat), float(lon), locked)


def batch(*rows: tuple[str, str, int, float, float, bool]) -> FixBatch:
    return FixBatch.from_rows(list(rows))


def sup(**kw: object) -> BikeSupervisor:
    kw.setdefault("allowed_lateness_ms", 0)
    return BikeSupervisor(SupervisionConfig(**kw), INDEX)  # type: ignore[arg-type]


def viol(events: list[Event]) -> list[tuple[str, str, str, int, int]]:
    """(action, kind, subject, opened_ts, ts) of the violations, times relative to T0."""
    return [(e.action, e.kind, e.subject_id, e.opened_ts - T0, e.ts - T0)
            for e in events if isinstance(e, Violation)]


def test_no_parking_opens_at_lock_time_reported_after_grace_and_closes_on_unlock() -> None:
    s = sup()
    out = s.process(batch(fix("b1", 0, 120, 120, True)))
    assert out == [FirstActive("meituan", "b1", 18617, T0)]
    assert s.advance_to(T0 + 5 * MIN - 1) == []
    opened = s.advance_to(T0 + 5 * MIN)
    assert viol(opened) == [("open", "no_parking", "b1", 0, 5 * MIN)]
    v = opened[0]
    assert isinstance(v, Violation)
    assert (v.zone_id, v.operator, v.duration_s, v.event_id) == ("NP", "meituan", 300.0, f"no_parking:b1:{T0}:open")
    closing = s.process(batch(fix("b1", 12 * MIN, 120, 120, False)))
    assert viol(closing) == [("close", "no_parking", "b1", 0, 12 * MIN)]
    c = closing[0]
    assert isinstance(c, Violation)
    assert (c.closed_ts, c.time_to_clear_s, c.reason) == (T0 + 12 * MIN, 720.0, "unlocked")
    assert s.advance_to(T0 + 30 * DAY_MS) == []  # nothing left open or due


def test_unlock_within_grace_yields_no_violation() -> None:
    s = sup()
    s.process(batch(fix("b1", 0, 120, 120, True)))
    assert viol(s.process(batch(fix("b1", 4 * MIN, 120, 120, False)))) == []
    assert viol(s.advance_to(T0 + DAY_MS)) == []


def test_grace_expiry_is_noticed_by_the_bikes_own_later_fix_too() -> None:
    s = sup()
    out = s.process(batch(fix("b1", 0, 120, 120, True), fix("b1", 8 * MIN, 121, 119, True),
                          fix("b1", 9 * MIN, 121, 119, False)))
    assert viol(out) == [("open", "no_parking", "b1", 0, 5 * MIN), ("close", "no_parking", "b1", 0, 9 * MIN)]


def test_outside_fence_in_a_fence_required_area_and_fence_tolerance() -> None:
    s = sup()
    out = s.process(batch(fix("far", 0, 30, 30, True), fix("near", 0, 8, 1, True)))
    assert [e for e in out if isinstance(e, OccupancyDelta)] == [OccupancyDelta("F1", "near", T0, 1)]
    opened = s.advance_to(T0 + 5 * MIN)
    assert viol(opened) == [("open", "outside_fence", "far", 0, 5 * MIN)]
    v = opened[0]
    assert isinstance(v, Violation) and v.zone_id == "AREA"
    assert v.distance_m == pytest.approx(np.hypot(24, 28), abs=0.01)  # to the fence's corner (6, 2)
    out = s.process(batch(fix("near", 6 * MIN, 8, 1, False)))
    assert [e for e in out if isinstance(e, OccupancyDelta)] == [OccupancyDelta("F1", "near", T0 + 6 * MIN, -1)]


def test_free_parking_outside_every_rule_area_is_fine() -> None:
    s = sup()
    s.process(batch(fix("b", 0, 800, 800, True)))
    assert viol(s.advance_to(T0 + DAY_MS)) == []


def test_moving_a_locked_bike_closes_its_violation_and_parks_it_anew() -> None:
    s = sup()
    s.process(batch(fix("b", 0, 120, 120, True)))
    s.advance_to(T0 + 5 * MIN)
    assert viol(s.process(batch(fix("b", 7 * MIN, 125, 124, True)))) == []  # GPS drift: no move
    out = s.process(batch(fix("b", 10 * MIN, 120, 60, True)))  # 60 m away, still locked
    assert viol(out) == [("close", "no_parking", "b", 0, 10 * MIN)]
    c = out[0]
    assert isinstance(c, Violation) and c.reason == "moved"
    assert viol(s.advance_to(T0 + 15 * MIN)) == [("open", "outside_fence", "b", 10 * MIN, 15 * MIN)]


def test_zombie_opens_after_n_days_locked_and_closes_on_unlock() -> None:
    s = sup(zombie_after_ms=7 * DAY_MS)
    s.process(batch(fix("z", 0, 3, 1, True)))  # in fence F1: no parking violation
    assert viol(s.advance_to(T0 + 7 * DAY_MS - 1)) == []
    assert viol(s.advance_to(T0 + 7 * DAY_MS)) == [("open", "zombie", "z", 7 * DAY_MS, 7 * DAY_MS)]
    out = s.process(batch(fix("z", 8 * DAY_MS, 3, 1, False)))
    assert viol(out) == [("close", "zombie", "z", 7 * DAY_MS, 8 * DAY_MS)]
    c = out[1] if isinstance(out[0], FirstActive) else out[0]
    assert isinstance(c, Violation) and c.time_to_clear_s == DAY_MS / 1000


def test_black_bike_opens_on_first_fix_of_each_day_and_closes_at_day_end() -> None:
    s = sup(registered_operators=frozenset({"meituan"}))
    out = s.process(batch(fix("x", 0, 800, 800, False, op="pirate"), fix("x", MIN, 810, 800, False, op="pirate"),
                          fix("ok", 0, 800, 800, False)))
    assert viol(out) == [("open", "black_bike", "x", 0, 0)]
    assert sorted(e.bike_id for e in out if isinstance(e, FirstActive)) == ["ok", "x"]
    day_end = 16 * 3_600_000  # T0 is 08:00 local
    assert viol(s.advance_to(T0 + day_end)) == [("close", "black_bike", "x", 0, day_end)]
    out = s.process(batch(fix("x", day_end + 5 * MIN, 800, 800, False, op="pirate")))
    assert viol(out) == [("open", "black_bike", "x", day_end + 5 * MIN, day_end + 5 * MIN)]
    assert [e.day for e in out if isinstance(e, FirstActive)] == [18618]


def test_a_bike_whose_feed_names_no_operator_is_counted_but_never_black() -> None:
    """``unknown`` (what the DCIC importer puts on every fix) is no evidence of an unlicensed operator; any other
    unregistered name still is."""
    s = sup(registered_operators=frozenset({"meituan"}), unattributed_operator="unknown")
    out = s.process(batch(fix("u", 0, 800, 800, False, op="unknown"), fix("x", 0, 900, 800, False, op="pirate")))
    assert viol(out) == [("open", "black_bike", "x", 0, 0)]
    assert sorted((e.operator, e.bike_id) for e in out if isinstance(e, FirstActive)) == [
        ("pirate", "x"), ("unknown", "u")]  # both in the fleet counts
    taken = sup(registered_operators=frozenset({"meituan"}))  # without the setting, the name is taken at its word
    assert viol(taken.process(batch(fix("u", 0, 800, 800, False, op="unknown")))) == [
        ("open", "black_bike", "u", 0, 0)]


def test_impossible_jump_is_flagged_and_not_applied() -> None:
    s = sup()
    s.process(batch(fix("j", 0, 0, 0, False)))
    out = s.process(batch(fix("j", 10_000, 1000, 0, False)))
    assert len(out) == 1 and isinstance(out[0], GpsFault)
    assert (out[0].kind, out[0].speed_kmh, out[0].distance_m) == ("impossible_jump", 360.0, 1000.0)
    assert s.stats["dropped"] == 1 and s.states.get("j")["last_ts"] == T0
    assert s.process(batch(fix("j", 200_000, 1000, 0, False))) == []  # 18 km/h from the last good fix
    assert s.states.get("j")["last_ts"] == T0 + 200_000


def test_outside_service_area_is_flagged_once_per_excursion() -> None:
    s = sup()
    rows = [fix("o", 0, 1900, 0, False), fix("o", 60_000, 2300, 0, False), fix("o", 120_000, 2600, 0, False),
            fix("o", 180_000, 1900, 0, False), fix("o", 240_000, 2300, 0, False)]
    faults = [e for e in s.process(batch(*rows)) if isinstance(e, GpsFault)]
    assert [(f.kind, f.ts - T0) for f in faults] == [("outside_service_area", 60_000), ("outside_service_area", 240_000)]
    assert s.stats["outside_service_area"] == 3  # every fix outside is counted


def test_duplicates_are_ignored_and_counted_so_a_replay_is_a_no_op() -> None:
    s = sup()
    feed = batch(fix("d", 0, 120, 120, True), fix("d", 6 * MIN, 120, 120, False))
    first = s.process(feed)
    assert viol(first) == [("open", "no_parking", "d", 0, 5 * MIN), ("close", "no_parking", "d", 0, 6 * MIN)]
    assert s.process(feed) == []
    assert s.stats["fixes"] == 4 and s.stats["applied"] == 2
    assert s.stats["duplicate"] + s.stats["late"] == 2
    s2 = sup()
    s2.process(batch(fix("d", 0, 120, 120, True), fix("d", 0, 120, 120, True)))  # duplicate in one batch
    assert s2.stats["duplicate"] == 1 and s2.stats["applied"] == 1


def test_a_fix_older_than_lateness_is_late_and_counted() -> None:
    s = sup(allowed_lateness_ms=MIN)
    s.process(batch(fix("l", 10 * MIN, 0, 50, False)))
    out = s.process(batch(fix("l", 8 * MIN, 120, 120, True)))  # 2 min older than the newest: late
    assert out == [] and s.stats["late"] == 1
    assert viol(s.advance_to(T0 + DAY_MS)) == []


def test_a_bike_lagging_the_watermark_is_applied_and_counted() -> None:
    s = sup(allowed_lateness_ms=MIN)
    s.process(batch(fix("a", 0, 0, 50, False), fix("a", 10 * MIN, 0, 50, False)))  # watermark: 9 min
    out = s.process(batch(fix("b", 5 * MIN, 120, 120, True)))  # b's first fix: in time for b
    assert s.stats["behind_watermark"] == 1 and s.stats["late"] == 0
    assert viol(out) == [] and s.states.get("b")["parked_since"] == T0 + 5 * MIN
    assert viol(s.advance_to(T0 + 10 * MIN)) == [("open", "no_parking", "b", 5 * MIN, 10 * MIN)]


FEED = [
    fix("a", 0, 120, 120, True), fix("b", 30_000, 50, 50, True), fix("c", 45_000, 3, 1, True),
    fix("a", 2 * MIN, 121, 121, True), fix("d", 2 * MIN, 1, 1, True), fix("e", 2 * MIN + 5, 2, 1, True),
    fix("b", 4 * MIN, 50, 50, False), fix("a", 7 * MIN, 120, 120, False), fix("c", 8 * MIN, 3, 1, False),
    fix("f", 9 * MIN, 5, 1, True), fix("b", 11 * MIN, 200, 200, True), fix("x", 11 * MIN, 0, 0, False, "pirate"),
]


def run(feed: list, sizes: list[int], lateness: int, end: int = T0 + 8 * DAY_MS) -> list[Event]:
    s = sup(allowed_lateness_ms=lateness, registered_operators=frozenset({"meituan"}))
    out: list[Event] = []
    at = 0
    for n in sizes:
        out += s.process(batch(*feed[at : at + n]))
        at += n
    return out + s.advance_to(end)


def key(e: Event) -> tuple:
    return (type(e).__name__, e.ts, repr(e))


def test_disorder_within_lateness_and_batch_sizes_change_nothing() -> None:
    expected = run(FEED, [len(FEED)], lateness=0)
    assert sorted(map(key, expected)) == sorted(map(key, run(FEED, [1] * len(FEED), lateness=0)))
    # Shuffle arrival within 3 minutes of event time, feed in uneven batches with 3 min lateness.
    rng = np.random.default_rng(5)
    jitter = [f[2] + int(rng.integers(0, 3 * MIN)) for f in FEED]
    shuffled = [FEED[i] for i in np.argsort(jitter, kind="stable")]
    assert shuffled != FEED
    got = run(shuffled, [3, 1, 5, 3], lateness=3 * MIN)
    assert sorted(map(key, got)) == sorted(map(key, expected))
    kinds = {(e.kind, e.action) for e in expected if isinstance(e, Violation)}
    assert kinds >= {("no_parking", "open"), ("no_parking", "close"), ("outside_fence", "open"),
                     ("black_bike", "open"), ("zombie", "open")}


def test_occupancy_deltas_feed_fence_capacity() -> None:
    out = run(FEED, [len(FEED)], lateness=0)
    occ = FenceOccupancy({"F1": 2}, allowed_lateness_ms=0)
    found = occ.process([e for e in out if isinstance(e, OccupancyDelta)])
    assert viol(found) == [("open", "fence_over_capacity", "F1", 2 * MIN + 5, 2 * MIN + 5),
                           ("close", "fence_over_capacity", "F1", 2 * MIN + 5, 8 * MIN),
                           ("open", "fence_over_capacity", "F1", 9 * MIN, 9 * MIN)]
    assert occ.count("F1") == 3  # d, e, f still parked (f arrived after c left)


@pytest.mark.parametrize("confirm", [False, True])
def test_a_bike_moved_within_one_counted_zone_stays_counted_there(confirm: bool) -> None:
    """Moved 100 m inside the fence-required area while locked: still one bike there. Without confirmation the move
    ends the old parking and starts the new one at the same instant; the keyed stage orders a departure before an
    arrival of the same instant, so a -1 and +1 pair of one zone and time would leave the bike uncounted."""
    s = sup(occupancy_all_zones=True, confirm_parking=confirm, move_threshold_m=50.0)
    feed = [fix("b1", 0, 200, 200, True), fix("b1", 1 * MIN, 201, 200, True),
            fix("b1", 10 * MIN, 300, 200, True), fix("b1", 11 * MIN, 301, 200, True),
            fix("b1", 12 * MIN, 302, 200, True)]
    out = [e for f in feed for e in s.process(batch(f))] + s.advance_to(T0 + 40 * MIN)
    occ = FenceOccupancy({}, allowed_lateness_ms=0)
    occ.process([e for e in out if isinstance(e, OccupancyDelta)])
    occ.advance_to(T0 + 40 * MIN)
    assert occ.count("AREA") == 1
    moved = [e for e in out if isinstance(e, Violation) and e.action == "close"]
    assert [(e.kind, e.reason) for e in moved] == [("outside_fence", "moved")]  # the move itself is still seen
    out = s.process(batch(fix("b1", 50 * MIN, 302, 200, False)))
    occ.process([e for e in out if isinstance(e, OccupancyDelta)])
    occ.advance_to(T0 + 60 * MIN)
    assert occ.count("AREA") == 0  # and the unlock takes it out
