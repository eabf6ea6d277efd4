"""Real DCIC fences and lock events (Xiamen Island, 2020-12-21): loads, shares near fences.

Skips when the shared reference data (``../shared`` next to the repository) is absent.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from models.geo import ZoneIndex, load_dcic_fences

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "xiamen_bikes"
FENCES, LOCKS = DATA / "fences_gxdc_tcd.csv", DATA / "lock_events_2020-12-21.csv"

pytestmark = pytest.mark.skipif(
    not (FENCES.exists() and LOCKS.exists()),
    reason=f"shared reference data absent ({DATA}); the real-data checks need ../shared/data",
)


@pytest.fixture(scope="module")
def index() -> ZoneIndex:
    res = load_dcic_fences(FENCES, capacity=10)
    assert len(res.zones) == 14_071 and res.rejected == ()
    return ZoneIndex(res.zones, tolerance_m=3.0, search_radius_m=50.0)


def lock_positions() -> tuple[np.ndarray, np.ndarray]:
    with open(LOCKS, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return (np.array([float(r["LONGITUDE"]) for r in rows]), np.array([float(r["LATITUDE"]) for r in rows]))


def test_fences_are_small_polygons_of_the_island(index: ZoneIndex) -> None:
    b = np.array([z.geometry.bounds for z in index.zones])
    assert b[:, 0].min() > 118.06 and b[:, 2].max() < 118.20
    assert b[:, 1].min() > 24.42 and b[:, 3].max() < 24.56
    areas = [index.projection.project(z.geometry).area for z in index.zones[:2000]]
    assert 5 < float(np.median(areas)) < 20  # m^2, median fence ~6.1 x 1.7 m


def test_share_of_real_lock_events_inside_and_near_fences(index: ZoneIndex) -> None:
    lon, lat = lock_positions()
    zone, dist = index.lookup(lon, lat, "parking_fence")
    inside, within3, within10 = (dist == 0).mean(), (dist <= 3).mean(), (dist <= 10).mean()
    assert 0.02 < inside < 0.06
    assert 0.15 < within3 < 0.25
    assert 0.45 < within10 < 0.60
    assert (zone != -1).mean() == pytest.approx(within3)  # match == within tolerance
