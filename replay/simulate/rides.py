"""Where a ride goes and the path it takes, vectorized over many bikes.

A ride heads for a target a lognormal distance away (median 1.2 km) and parks according to a drawn
*outcome*: inside the parking fence nearest the target, inside the nearest no-parking zone, on the
street outside any fence (at least :data:`OUTSIDE_MIN_M` from every fence and zone, so the truth is
unambiguous beyond GPS noise), or in a fence for good (a zombie). The path is a staircase of three
straight legs along a street grid rotated by a random angle per ride: shared bikes follow streets.
"""

from __future__ import annotations

__all__ = ["Path3", "staircase", "plan_targets", "path_position", "FENCE", "NO_PARKING", "OUTSIDE", "ZOMBIE",
           "OUTSIDE_MIN_M"]

from dataclasses import dataclass

import numpy as np
import shapely

from replay.simulate.geography import Geography

FENCE, NO_PARKING, OUTSIDE, ZOMBIE = 0, 1, 2, 3
OUTSIDE_MIN_M = 15.0
_MEDIAN_RIDE_M, _RIDE_SIGMA = 1200.0, 0.6


@dataclass
class Path3:
    """Three-leg paths: corner points ``c1``, ``c2``, destination ``d``, cumulative leg ends (m)."""

    c1: np.ndarray  # (n, 2)
    c2: np.ndarray
    d: np.ndarray
    l1: np.ndarray  # distance at c1
    l2: np.ndarray  # distance at c2
    total: np.ndarray


def staircase(rng: np.random.Generator, o: np.ndarray, d: np.ndarray) -> Path3:
    """A street-like path from ``o`` to ``d`` (both ``(n, 2)``): along a rotated axis, across, along.

    Example
    -------
    >>> p = staircase(np.random.default_rng(0), np.zeros((1, 2)), np.array([[300.0, 400.0]]))
    >>> bool(p.total[0] >= 500.0), np.allclose(path_position(p, np.zeros((1, 2)), p.total), [[300, 400]])
    (True, True)
    """
    n = len(o)
    ang = rng.uniform(-0.45, 0.45, n) + rng.integers(0, 2, n) * (np.pi / 2)
    eu = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    ev = np.stack([-np.sin(ang), np.cos(ang)], axis=1)
    delta = d - o
    du = (delta * eu).sum(axis=1)
    dv = (delta * ev).sum(axis=1)
    a = rng.uniform(0.2, 0.8, n)[:, None]
    c1 = o + a * du[:, None] * eu
    c2 = c1 + dv[:, None] * ev
    l1 = np.abs(a[:, 0] * du)
    l2 = l1 + np.abs(dv)
    return Path3(c1, c2, d.copy(), l1, l2, l2 + np.abs((1 - a[:, 0]) * du))


def path_position(p: Path3, o: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Point ``dist`` metres along each path (``o`` its origin), clipped to the destination."""
    dist = np.clip(dist, 0.0, p.total)[:, None]
    f1 = dist / np.maximum(p.l1, 1e-9)[:, None]
    f2 = (dist - p.l1[:, None]) / np.maximum(p.l2 - p.l1, 1e-9)[:, None]
    f3 = (dist - p.l2[:, None]) / np.maximum(p.total - p.l2, 1e-9)[:, None]
    leg1 = o + (p.c1 - o) * f1
    leg2 = p.c1 + (p.c2 - p.c1) * f2
    leg3 = p.c2 + (p.d - p.c2) * f3
    return np.where(dist <= p.l1[:, None], leg1, np.where(dist <= p.l2[:, None], leg2, leg3))


def plan_targets(rng: np.random.Generator, geo: Geography, o: np.ndarray,
                 outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Destinations for rides from ``o`` with drawn outcomes.

    Returns ``(dest (n, 2), outcome, zone)`` where ``zone`` is the fence index (FENCE, ZOMBIE), the
    no-parking zone index (NO_PARKING) or -1 (OUTSIDE). An OUTSIDE target that stays too close to a
    fence or zone after a few nudges becomes a FENCE outcome.
    """
    n = len(o)
    dist = np.clip(rng.lognormal(np.log(_MEDIAN_RIDE_M), _RIDE_SIGMA, n), 150.0, 6000.0)
    ang = rng.uniform(0, 2 * np.pi, n)
    t = o + dist[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    bad = ~shapely.contains_xy(geo.fra, t[:, 0], t[:, 1])
    t[bad] = o[bad] - (t[bad] - o[bad])  # turn back towards the island
    bad = ~shapely.contains_xy(geo.fra, t[:, 0], t[:, 1])
    t[bad] = o[bad]
    outcome = outcome.copy()
    zone = np.full(n, -1, np.int64)
    dest = t.copy()
    out = np.flatnonzero(outcome == OUTSIDE)
    for _ in range(6):
        if not len(out):
            break
        ok = _clear_of_everything(geo, t[out])
        out = out[~ok]
        ang = rng.uniform(0, 2 * np.pi, len(out))
        t[out] += rng.uniform(30, 150, len(out))[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
    outcome[out] = FENCE
    dest[outcome == OUTSIDE] = t[outcome == OUTSIDE]
    fz = np.flatnonzero((outcome == FENCE) | (outcome == ZOMBIE))
    if len(fz):
        zone[fz] = geo.fences.nearest(t[fz, 0], t[fz, 1])[0]
        dest[fz] = np.stack(geo.fences.sample(zone[fz], rng), axis=1)
    npk = np.flatnonzero(outcome == NO_PARKING)
    if len(npk):
        zone[npk] = geo.zones.nearest(t[npk, 0], t[npk, 1])[0]
        dest[npk] = geo.zones.pools[zone[npk], rng.integers(0, geo.zones.pools.shape[1], len(npk))]
    return dest, outcome, zone


def _clear_of_everything(geo: Geography, p: np.ndarray) -> np.ndarray:
    inside = shapely.contains_xy(geo.fra, p[:, 0], p[:, 1])
    fd = geo.fences.nearest(p[:, 0], p[:, 1])[1]
    zd = geo.zones.nearest(p[:, 0], p[:, 1])[1]
    return inside & (fd >= OUTSIDE_MIN_M) & (zd >= OUTSIDE_MIN_M)
