"""Real DCIC lock events through the supervisor with the real fences (skips without ../shared)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import shapely

from models.bikes import BikeSupervisor, SupervisionConfig, Violation
from models.bikes.state import F_OUTSIDE_FENCE, PLACE_FENCE
from models.geo import Zone, ZoneIndex, load_dcic_fences
from models.gps import FixBatch

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "xiamen_bikes"
FENCES, LOCKS = DATA / "fences_gxdc_tcd.csv", DATA / "lock_events_2020-12-21.csv"

pytestmark = pytest.mark.skipif(
    not (FENCES.exists() and LOCKS.exists()),
    reason=f"shared reference data absent ({DATA}); the real-data checks need ../shared/data",
)
XIAMEN = timezone(timedelta(hours=8))


def test_real_lock_events_park_in_fences_at_the_observed_share() -> None:
    fences = load_dcic_fences(FENCES, capacity=10).raise_if_rejected()
    island = Zone("ISLAND", "fence_required_area", "Xiamen Island", shapely.box(118.06, 24.42, 118.20, 24.56))
    sup = BikeSupervisor(SupervisionConfig(allowed_lateness_ms=0), ZoneIndex([*fences, island]))
    with open(LOCKS, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ts = np.array([int(datetime.strptime(r["UPDATE_TIME"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=XIAMEN)
                       .timestamp() * 1000) for r in rows], np.int64)
    order = np.argsort(ts, kind="stable")
    feed = FixBatch([rows[i]["BICYCLE_ID"] for i in order], ["dcic"] * len(rows), ts[order],
                    np.array([float(rows[i]["LATITUDE"]) for i in order]),
                    np.array([float(rows[i]["LONGITUDE"]) for i in order]),
                    np.array([rows[i]["LOCK_STATUS"] == "1" for i in order]))
    events = []
    for at in range(0, len(feed), 5000):
        events += sup.process(feed.take(np.arange(at, min(len(feed), at + 5000))))
    events += sup.advance_to(int(ts.max()) + 3_600_000)
    assert sup.stats["applied"] + sup.stats["duplicate"] + sup.stats["late"] + sup.stats["dropped"] == len(feed)
    n = len(sup.states)
    place, flags = sup.states.data["place"][:n], sup.states.data["flags"][:n]
    in_fence = float(np.mean(place == PLACE_FENCE))
    assert 0.15 < in_fence < 0.25, in_fence  # ~20% of real parkings lie within 3 m of a fence
    # Every other parked bike on the island is in violation once the grace has passed.
    assert float(np.mean(flags & F_OUTSIDE_FENCE != 0)) == pytest.approx(1 - in_fence, abs=0.02)
    opens = sum(1 for e in events if isinstance(e, Violation) and e.action == "open")
    assert opens >= n * (1 - in_fence) * 0.98
