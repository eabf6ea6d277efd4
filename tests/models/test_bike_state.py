"""Bike state: snapshot/restore and per-bike changelog round trips, and memory per tracked bike."""

from __future__ import annotations

import gc
import pickle
import tracemalloc

import numpy as np
import pytest
import shapely

from models.bikes import BikeSupervisor, Event, SupervisionConfig
from models.bikes.bench import synthetic_fleet
from models.bikes.state import STATE_DTYPE, BikeStates
from models.geo import LocalProjection, Zone, ZoneIndex
from models.gps import FixBatch

P = LocalProjection(118.1, 24.5)


def rect(zone_id: str, kind: str, x0: float, y0: float, x1: float, y1: float) -> Zone:
    lon, lat = P.inverse([x0, x1], [y0, y1])
    return Zone(zone_id, kind, zone_id, shapely.box(lon[0], lat[0], lon[1], lat[1]), 3)


@pytest.fixture(scope="module")
def index() -> ZoneIndex:
    fences = [rect(f"F{i}-{j}", "parking_fence", 40 * i, 40 * j, 40 * i + 6, 40 * j + 2)
              for i in range(15) for j in range(15)]
    return ZoneIndex(fences + [
        rect("NP", "no_parking", 100, 100, 180, 180),
        rect("AREA", "fence_required_area", -100, -100, 700, 700),
    ], projection=P)


@pytest.fixture(scope="module")
def feed(index: ZoneIndex) -> FixBatch:
    x, y = np.meshgrid(np.arange(0, 600, 37.0), np.arange(0, 600, 41.0))
    spots = P.inverse(x.ravel(), y.ravel())
    return synthetic_fleet(index, spots, n_bikes=300, n_steps=40, report_ms=20_000, unlock_p=0.15,
                           speed_ms=3.0, seed=11)


CFG = SupervisionConfig(grace_ms=60_000, allowed_lateness_ms=30_000, zombie_after_ms=600_000,
                        registered_operators=frozenset({"meituan", "hellobike"}))


def chunks(feed: FixBatch, size: int) -> list[FixBatch]:
    return [feed.take(np.arange(a, min(len(feed), a + size))) for a in range(0, len(feed), size)]


def run(sup: BikeSupervisor, batches: list[FixBatch]) -> list[Event]:
    return [e for b in batches for e in sup.process(b)]


def test_snapshot_restore_gives_identical_subsequent_events(index: ZoneIndex, feed: FixBatch) -> None:
    batches = chunks(feed, 700)
    a = BikeSupervisor(CFG, index)
    run(a, batches[:8])
    assert a.stats["held"] > 0  # the snapshot must carry held-back fixes too
    b = BikeSupervisor.restore(CFG, index, a.snapshot())
    c = pickle.loads(pickle.dumps(a))  # pickles too (river-style clone)
    rest_a, rest_b, rest_c = run(a, batches[8:]), run(b, batches[8:]), run(c, batches[8:])
    assert len(rest_a) > 100 and rest_a == rest_b == rest_c
    assert a.advance_to(feed.ts[-1] + 3_600_000) == b.advance_to(feed.ts[-1] + 3_600_000)
    assert a.snapshot() == b.snapshot()


def test_per_bike_changelog_restores_to_identical_events(index: ZoneIndex, feed: FixBatch) -> None:
    batches = chunks(feed, 500)
    a = BikeSupervisor(CFG, index)
    changelog: dict[str, bytes] = {}
    for bt in batches[:10]:
        a.process(bt)
        changelog.update(a.drain_changes())
    assert len(changelog) == len(a.states) == 300
    b = BikeSupervisor(CFG, index)
    b.import_bikes(changelog)
    assert len(b.held) == len(a.held)
    assert run(a, batches[10:]) == run(b, batches[10:])


def test_one_bike_state_round_trips_through_bytes() -> None:
    s = BikeStates()
    r = s.rows_for(["MT-9"], ["meituan"])[0]
    s.data[r] = (5, 118.1, 24.5, 9, 3, 118.1, 24.5, 7, 1, 4, 2.5, 18617, 0, 1, 2, 3, 300_000)
    t = BikeStates()
    t.put_bytes("MT-9", s.to_bytes("MT-9"))
    assert t.get("MT-9") == s.get("MT-9") and t.operators == ["meituan"]
    with pytest.raises(ValueError, match="not a BikeStates"):
        BikeStates.restore(b"junk")


def test_memory_per_tracked_bike_is_well_under_a_kibibyte(index: ZoneIndex) -> None:
    n = 10_000
    assert STATE_DTYPE.itemsize <= 96
    sup = BikeSupervisor(SupervisionConfig(allowed_lateness_ms=0), index)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rng = np.random.default_rng(0)
        lon, lat = P.inverse(rng.uniform(0, 600, n), rng.uniform(0, 600, n))
        ids = [f"{rng.integers(1 << 62):032x}" for _ in range(n)]  # DCIC-like 32-char ids
        batch = FixBatch(ids, ["meituan"] * n, np.arange(n, dtype=np.int64) + 1_608_508_800_000,
                         lat, lon, rng.random(n) < 0.5)
        del ids
        events = sup.process(batch)
        del batch, events, lon, lat
        gc.collect()
        per_bike = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(sup.states) == n
    assert 89 < per_bike < 1024, per_bike


def test_rows_loaded_in_bulk_store_back_exactly_what_was_changed() -> None:
    s = BikeStates()
    rows = s.rows_for(["A", "B", "C", "D"], ["meituan", "hellobike", "meituan", "qingju"])
    s.data["last_ts"][rows] = [10, 20, 30, 40]
    s.data["fence_dist"][rows[1]] = 2.5
    before = s.data.copy()
    pick = rows[[3, 1]]  # not in row order
    loaded = s.load_rows(pick)
    assert [v[0] for v in loaded] == [40, 20]
    # every field, in FIELD order (compared as bytes: unset positions are NaN)
    assert np.array([tuple(v) for v in loaded], STATE_DTYPE).tobytes() == s.data[pick].tobytes()
    loaded[0][0], loaded[1][-1] = 41, 7  # D's last_ts, B's last field (report_lag_ms)
    s.store_rows(pick, loaded)
    changed = [r for r in range(len(before)) if s.data[r].tobytes() != before[r].tobytes()]  # NaN-safe
    assert changed == sorted(pick.tolist())
    assert s.data["last_ts"][rows].tolist() == [10, 20, 30, 41]
    assert s.data["report_lag_ms"][rows[1]] == 7 and s.data["fence_dist"][rows[1]] == 2.5
    s.store_rows(rows[:0], [])  # nothing to store: no change, no error
    assert s.data["last_ts"][rows].tolist() == [10, 20, 30, 41]
