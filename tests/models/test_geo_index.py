"""ZoneIndex: matches within tolerance, metric distances, deterministic ties, containment."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from models.geo import NO_ZONE, LocalProjection, Zone, ZoneIndex
from models.geo.bench import bench_lookup, sample_points

P = LocalProjection(118.1, 24.5)


def rect(zone_id: str, kind: str, x0: float, y0: float, x1: float, y1: float) -> Zone:
    """A zone from a rectangle given in metres around P's centre."""
    lon, lat = P.inverse([x0, x1], [y0, y1])
    return Zone(zone_id, kind, zone_id, shapely.box(lon[0], lat[0], lon[1], lat[1]))


def at(*xy: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    return P.inverse([p[0] for p in xy], [p[1] for p in xy])


def test_projection_matches_the_ellipsoid_series_for_a_degree() -> None:
    # Metres per degree at 24.5 deg from the standard WGS84 series expansions (independent formula).
    phi = np.radians(24.5)
    lat_deg = 111132.954 - 559.822 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    lon_deg = 111412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi) + 0.118 * np.cos(5 * phi)
    p = LocalProjection(118.1, 24.5)
    assert p.ky == pytest.approx(lat_deg, rel=1e-4)
    assert p.kx == pytest.approx(lon_deg, rel=1e-4)


def test_lookup_matches_within_tolerance_and_measures_metres() -> None:
    idx = ZoneIndex([rect("F", "parking_fence", 0, 0, 6, 2)], tolerance_m=3.0, search_radius_m=50.0,
                    projection=P)
    zone, dist = idx.lookup(*at((3, 1), (3, 4), (3, 5.5), (9, 6), (3, 32), (3, 62)), "parking_fence")
    assert zone.tolist() == [0, 0, NO_ZONE, NO_ZONE, NO_ZONE, NO_ZONE]
    assert dist[:5] == pytest.approx([0.0, 2.0, 3.5, 5.0, 30.0], abs=1e-6)
    assert dist[5] == np.inf
    # Per-call tolerance; radius 0 = match only (no distance beyond the tolerance).
    assert idx.lookup(*at((3, 4)), "parking_fence", tolerance_m=0.0)[0].tolist() == [NO_ZONE]
    z, d = idx.lookup(*at((3, 4), (3, 32)), "parking_fence", search_radius_m=0.0)
    assert z.tolist() == [0, NO_ZONE] and d.tolist() == pytest.approx([2.0, np.inf])


def test_default_projection_keeps_distances_within_a_tenth_of_a_percent() -> None:
    zones = [rect("F", "parking_fence", 0, 0, 6, 2), rect("far", "district", 8000, 8000, 9000, 9000)]
    d = ZoneIndex(zones, search_radius_m=100.0).lookup(*at((3, 42)), "parking_fence")[1]
    assert d[0] == pytest.approx(40.0, rel=1e-3)


def test_ties_prefer_the_nearest_then_the_lowest_index() -> None:
    zones = [
        rect("A", "parking_fence", 10, 0, 16, 2),
        rect("B", "parking_fence", 0, 0, 6, 2),
        rect("B-copy", "parking_fence", 0, 0, 6, 2),
    ]
    idx = ZoneIndex(zones, tolerance_m=3.0, projection=P)
    zone, dist = idx.lookup(*at((7, 1), (8, 1), (3, 1)), "parking_fence")
    assert zone.tolist() == [1, 0, 1]  # nearest B; equidistant: A (lower index); inside both: B
    assert dist.tolist() == pytest.approx([1.0, 2.0, 0.0])
    # Same answers whatever the order of the points.
    lon, lat = at((7, 1), (8, 1), (3, 1))
    z2, _ = idx.lookup(lon[::-1], lat[::-1], "parking_fence")
    assert z2[::-1].tolist() == zone.tolist()


def test_kinds_are_separate_and_missing_kinds_match_nothing() -> None:
    idx = ZoneIndex([rect("NP", "no_parking", 0, 0, 10, 10), rect("F", "parking_fence", 50, 0, 56, 2)],
                    projection=P)
    assert idx.lookup(*at((5, 5)), "parking_fence")[0].tolist() == [NO_ZONE]
    assert idx.lookup(*at((5, 5)), "no_parking")[0].tolist() == [0]
    zone, dist = idx.lookup(*at((5, 5)), "service_area")
    assert zone.tolist() == [NO_ZONE] and dist.tolist() == [np.inf]
    assert idx.lookup(np.array([]), np.array([]), "no_parking")[0].shape == (0,)
    assert idx.ids([1, NO_ZONE]).tolist() == ["F", ""] and idx.position("F") == 1


def test_contains_agrees_between_the_few_zone_and_tree_paths() -> None:
    cells = [rect(f"g{i}", "grid", 100 * i, 0, 100 * i + 100, 100) for i in range(20)]  # tree path
    few = [rect("d0", "district", 0, 0, 1000, 100), rect("d1", "district", 500, 0, 2000, 100)]
    idx = ZoneIndex(cells + few, projection=P)
    pts = at((50, 50), (150, 50), (100, 50), (1950, 50), (3000, 50), (700, 50))
    assert idx.contains(*pts, "grid").tolist() == [0, 1, 0, 19, NO_ZONE, 6]  # shared edge: lowest
    few_path = idx.contains(*pts, "district")
    assert few_path.tolist() == [20, 20, 20, 21, NO_ZONE, 20]
    tree_path = idx.lookup(*pts, "district", tolerance_m=0.0, search_radius_m=0.0)[0]
    assert tree_path.tolist() == few_path.tolist()


def test_index_validation() -> None:
    with pytest.raises(ValueError, match="unique"):
        ZoneIndex([rect("X", "grid", 0, 0, 1, 1), rect("X", "grid", 2, 2, 3, 3)])
    with pytest.raises(ValueError, match="projection"):
        ZoneIndex([])
    assert not ZoneIndex([], projection=P).has("grid")


def test_bench_lookup_reports_points_per_second() -> None:
    idx = ZoneIndex([rect(f"F{i}", "parking_fence", 20 * i, 0, 20 * i + 6, 2) for i in range(50)])
    lon, lat = sample_points(idx, "parking_fence", 2000, seed=3)
    assert bench_lookup(idx, lon, lat, repeat=1) > 1000
    with pytest.raises(ValueError, match="no zones"):
        sample_points(idx, "no_parking", 10)
