"""Confirmed parking places: two agreeing samples decide, stray fixes decide nothing (``confirm_parking``)."""

from __future__ import annotations

import pytest
import shapely

from models.bikes import BikeSupervisor, Event, OccupancyDelta, Parked, SupervisionConfig, Violation
from models.bikes.config import MINUTE_MS
from models.geo import LocalProjection, Zone, ZoneIndex
from models.gps import FixBatch

P = LocalProjection(118.1, 24.5)
T0 = 1_608_508_800_000


def rect(zone_id: str, kind: str, x0: float, y0: float, x1: float, y1: float, capacity: int | None = None) -> Zone:
    lon, lat = P.inverse([x0, x1], [y0, y1])
    return Zone(zone_id, kind, zone_id, shapely.box(lon[0], lat[0], lon[1], lat[1]), capacity)


INDEX = ZoneIndex([
    rect("F1", "parking_fence", 0, 0, 6, 2, capacity=5),
    rect("NP", "no_parking", 300, 0, 340, 40),
    rect("AREA", "fence_required_area", -1000, -1000, 1000, 1000),
], projection=P)


def sup(**kw: object) -> BikeSupervisor:
    cfg = dict(allowed_lateness_ms=0, confirm_parking=True, fence_tolerance_m=20.0, no_parking_tolerance_m=12.0,
               move_threshold_m=80.0, confirm_radius_m=20.0, report_parkings=True, occupancy_all_zones=True)
    cfg.update(kw)
    return BikeSupervisor(SupervisionConfig(**cfg), INDEX)  # type: ignore[arg-type]


def feed(s: BikeSupervisor, *fixes: tuple[int, float, float, bool], bike: str = "b") -> list[Event]:
    out: list[Event] = []
    for t, x, y, locked in fixes:
        lon, lat = P.inverse(x, y)
        out += s.process(FixBatch.from_rows([(bike, "meituan", T0 + t, float(lat), float(lon), locked)]))
    return out


def viol(events: list[Event]) -> list[tuple[str, str, int, int]]:
    return [(e.action, e.kind, e.opened_ts - T0, e.ts - T0) for e in events if isinstance(e, Violation)]


def test_one_fix_decides_nothing_the_second_agreeing_one_does() -> None:
    s = sup()
    assert viol(feed(s, (0, 200, 200, True))) == []
    assert viol(s.advance_to(T0 + 9 * MINUTE_MS)) == []  # past the grace, but unconfirmed: nothing yet
    out = feed(s, (10 * MINUTE_MS, 205, 198, True))
    assert viol(out) == [("open", "outside_fence", 0, 10 * MINUTE_MS)]  # opened at the lock, reported now
    (parked,) = [e for e in out if isinstance(e, Parked)]
    assert (parked.place, parked.zone_id, parked.parked_ts, parked.ts) == ("outside_fence", "AREA", T0, T0 + 10 * MINUTE_MS)


def test_a_stray_lock_fix_is_replaced_by_the_next_two_that_agree() -> None:
    s = sup()
    # Locked in F1; the lock fix strayed 45 m (multipath), the next two agree on the fence.
    feed(s, (0, 3, 46, True), (5 * MINUTE_MS, 2, 1, True))
    out = feed(s, (10 * MINUTE_MS, 4, 2, True)) + s.advance_to(T0 + 60 * MINUTE_MS)
    assert viol(out) == []
    assert [(e.zone_id, e.delta) for e in out if isinstance(e, OccupancyDelta)] == [("F1", 1)]


def test_a_pair_with_a_sample_in_a_fence_is_in_that_fence() -> None:
    s = sup()
    # 15 m apart (they agree); the midpoint is 23 m from the fence, but the first sample is 16 m from it.
    out = feed(s, (0, 3, 18, True), (5 * MINUTE_MS, 3, 33, True)) + s.advance_to(T0 + 60 * MINUTE_MS)
    assert viol(out) == []
    assert [e.place for e in out if isinstance(e, Parked)] == ["parking_fence"]


def test_a_bike_that_sent_a_fence_sample_is_never_outside_fence() -> None:
    s = sup()
    # In the fence, then two agreeing stray fixes 50 m off: not an outside_fence violation.
    out = feed(s, (0, 3, 1, True), (5 * MINUTE_MS, 3, 50, True), (10 * MINUTE_MS, 6, 55, True))
    assert viol(out + s.advance_to(T0 + 60 * MINUTE_MS)) == []


def test_no_parking_needs_the_confirmed_position_near_the_zone() -> None:
    s = sup()
    out = feed(s, (0, 320, 20, True), (6 * MINUTE_MS, 322, 18, True))
    assert viol(out) == [("open", "no_parking", 0, 6 * MINUTE_MS)]
    near = sup()  # 10 m outside the zone's edge: within the 12 m tolerance
    assert viol(feed(near, (0, 350, 20, True), (6 * MINUTE_MS, 350, 22, True)))[0][1] == "no_parking"
    far = sup()  # 25 m outside it: outside_fence instead
    assert viol(feed(far, (0, 365, 20, True), (6 * MINUTE_MS, 365, 22, True)))[0][1] == "outside_fence"


def test_the_unlock_fix_is_the_last_sample_and_reports_what_it_confirms() -> None:
    s = sup()
    out = feed(s, (0, 200, 200, True), (6 * MINUTE_MS, 202, 199, False))  # no heartbeat came before the unlock
    assert viol(out) == [("open", "outside_fence", 0, 6 * MINUTE_MS), ("close", "outside_fence", 0, 6 * MINUTE_MS)]
    quick = sup()  # unlocked within the grace: nothing
    assert viol(feed(quick, (0, 200, 200, True), (4 * MINUTE_MS, 202, 199, False))) == []


def test_an_unlock_that_agrees_with_no_sample_keeps_a_fenced_bike_in_its_fence() -> None:
    s = sup()
    # In the fence; then one stray heartbeat 45 m off; then the unlock, back in the fence: no two agree.
    out = feed(s, (0, 3, 1, True), (5 * MINUTE_MS, 3, 46, True), (8 * MINUTE_MS, 2, 1, False))
    assert viol(out) == [] and [e for e in out if isinstance(e, OccupancyDelta)] == []


def test_a_silent_bike_is_decided_on_its_one_sample_after_the_confirm_wait() -> None:
    s = sup(confirm_wait_ms=10 * MINUTE_MS)
    feed(s, (0, 200, 200, True))
    assert viol(s.advance_to(T0 + 15 * MINUTE_MS - 1)) == []
    assert viol(s.advance_to(T0 + 15 * MINUTE_MS)) == [("open", "outside_fence", 0, 15 * MINUTE_MS)]


def test_one_far_fix_moves_nothing_two_agreeing_far_fixes_move_the_bike() -> None:
    s = sup()
    feed(s, (0, 200, 200, True), (5 * MINUTE_MS, 200, 201, True))
    assert viol(feed(s, (10 * MINUTE_MS, 200, 300, True), (15 * MINUTE_MS, 201, 200, True))) == []  # one stray fix
    out = feed(s, (20 * MINUTE_MS, 600, 600, True), (25 * MINUTE_MS, 602, 601, True))
    assert viol(out) == [("close", "outside_fence", 0, 20 * MINUTE_MS), ("open", "outside_fence", 20 * MINUTE_MS, 25 * MINUTE_MS)]
    c = next(e for e in out if isinstance(e, Violation) and e.action == "close")
    assert c.reason == "moved" and c.reported_ts == T0 + 5 * MINUTE_MS


def test_two_jumps_in_a_row_reanchor_the_bike() -> None:
    s = sup()
    feed(s, (0, 0, 0, False))
    feed(s, (10_000, 5000, 0, False))  # a glitch: dropped
    feed(s, (20_000, 5010, 0, False))  # again far from the last good fix: it was not the glitch after all
    assert s.stats["dropped"] == 1 and s.stats["reanchored"] == 1
    assert s.states.get("b")["last_ts"] == T0 + 20_000


def test_occupancy_of_every_zone_kind_and_the_report_time_survives_the_close() -> None:
    s = sup()
    out = feed(s, (0, 320, 20, True), (6 * MINUTE_MS, 321, 20, True), (30 * MINUTE_MS, 321, 20, False))
    assert [(e.zone_id, e.delta, e.ts - T0) for e in out if isinstance(e, OccupancyDelta)] == [
        ("NP", 1, 6 * MINUTE_MS), ("NP", -1, 30 * MINUTE_MS)]
    c = [e for e in out if isinstance(e, Violation)][-1]
    assert (c.action, c.reported_ts, c.time_to_clear_s) == ("close", T0 + 6 * MINUTE_MS, 1800.0)


def test_per_bike_export_round_trips_a_pending_parking() -> None:
    a = sup(allowed_lateness_ms=MINUTE_MS)
    feed(a, (0, 200, 200, True), (30_000, 0, 500, False), bike="x")
    feed(a, (0, 200, 200, True))
    b = sup(allowed_lateness_ms=MINUTE_MS)
    b.import_bikes(a.export_bikes(["b", "x"]))
    assert len(b.held) == len(a.held) > 0
    rest = [(6 * MINUTE_MS, 201, 200, True)]
    assert viol(feed(a, *rest)) == viol(feed(b, *rest)) == []
    assert viol(a.advance_to(T0 + DAY)) == viol(b.advance_to(T0 + DAY)) == [("open", "outside_fence", 0, 6 * MINUTE_MS)]
    with pytest.raises(ValueError, match="not a bike export"):
        b.import_bikes({"z": b"junk"})


DAY = 86_400_000
