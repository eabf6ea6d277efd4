"""Throughput benchmark of :meth:`ZoneIndex.lookup` (points per second), for ``citystream bench``."""

from __future__ import annotations

__all__ = ["bench_lookup", "sample_points"]

import time
from collections.abc import Callable

import numpy as np
import shapely
from numpy.typing import NDArray

from models.geo.index import ZoneIndex


def sample_points(
    index: ZoneIndex, kind: str, n: int, noise_m: float = 10.0, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` points around random zones of ``kind`` (centroid + Gaussian noise of ``noise_m``), the
    shape of parked-bike fixes near fences. Deterministic for a seed.

    >>> from models.geo.zones import Zone
    >>> idx = ZoneIndex([Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.10006, 24.50002))])
    >>> lon, lat = sample_points(idx, "parking_fence", 3)
    >>> lon.shape, bool(abs(lon - 118.1).max() < 0.001)
    ((3,), True)
    """
    rng = np.random.default_rng(seed)
    zones = [z for z in index.zones if z.kind == kind]
    if not zones:
        raise ValueError(f"no zones of kind {kind!r}")
    c = shapely.get_coordinates(shapely.centroid(np.array([z.geometry for z in zones], dtype=object)))
    x, y = index.projection.forward(c[:, 0], c[:, 1])
    pick = rng.integers(0, len(zones), n)
    return index.projection.inverse(
        x[pick] + rng.normal(0.0, noise_m, n), y[pick] + rng.normal(0.0, noise_m, n)
    )


def bench_lookup(
    index: ZoneIndex,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    kind: str = "parking_fence",
    search_radius_m: float | None = None,
    repeat: int = 3,
    timer: Callable[[], float] = time.perf_counter,
) -> float:
    """Points per second of one ``index.lookup`` call over all points (best of ``repeat``).

    ``timer`` measures elapsed compute only; it never feeds event time. The first, untimed call
    builds the lazily cached trees.

    >>> from models.geo.zones import Zone
    >>> idx = ZoneIndex([Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.10006, 24.50002))])
    >>> bench_lookup(idx, *sample_points(idx, "parking_fence", 1000)) > 0
    True
    """
    index.lookup(lon[:10], lat[:10], kind, search_radius_m=search_radius_m)
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = timer()
        index.lookup(lon, lat, kind, search_radius_m=search_radius_m)
        best = min(best, timer() - start)
    return len(lon) / max(best, 1e-9)
