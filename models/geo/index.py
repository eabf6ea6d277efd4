"""Vectorized point-in-zone and distance-to-zone lookups over a batch of fixes.

Geometry is projected once to a local metric plane (:class:`~models.geo.projection.LocalProjection`),
so tolerances and distances are in metres. One shapely 2 ``STRtree`` per zone kind answers a whole
batch per call: per-point Python work is what costs, not the geometry.
"""

from __future__ import annotations

__all__ = ["ZoneIndex", "NO_ZONE"]

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from models.geo.projection import LocalProjection
from models.geo.zones import Zone

#: Zone index meaning "no zone".
NO_ZONE = -1
_FEW = 16  # up to this many zones of a kind, containment loops over them instead of using the tree


@dataclass(slots=True)
class _KindTree:
    zone_idx: NDArray[np.int64]  # tree position -> index into ZoneIndex.zones
    geoms: NDArray[np.object_]  # projected (metres), prepared
    tree: shapely.STRtree
    # Trees over the zones' bounding boxes grown by a margin, by margin: a plain bbox query of points
    # against them yields every zone within the margin, ~3x faster than the "dwithin" predicate.
    grown: dict[float, shapely.STRtree] = field(default_factory=dict)

    def within(
        self, pts: NDArray[np.object_], margin: float
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """Pairs (point, tree position, distance) with distance <= margin."""
        tree = self.grown.get(margin)
        if tree is None:
            b = shapely.bounds(self.geoms)
            tree = self.grown[margin] = shapely.STRtree(
                shapely.box(b[:, 0] - margin, b[:, 1] - margin, b[:, 2] + margin, b[:, 3] + margin)
            )
        p, t = tree.query(pts)
        d = shapely.distance(pts[p], self.geoms[t])
        ok = d <= margin
        return p[ok], t[ok], d[ok]


def _first_per_point(
    point: NDArray[np.int64], dist: NDArray[np.float64], zone: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Positions of the best pair per point: nearest first, then lowest zone index (deterministic)."""
    order = np.lexsort((zone, dist, point))
    p = point[order]
    keep = np.ones(len(order), bool)
    keep[1:] = p[1:] != p[:-1]
    return order[keep]  # type: ignore[no-any-return]


class ZoneIndex:
    """Spatial index of zones by kind, answering batches of WGS84 points.

    Parameters
    ----------
    zones
        The zones; results are indices into this sequence (``NO_ZONE`` = -1 for none).
    tolerance_m
        A point this close to a zone (metres) matches it in :meth:`lookup`; GPS noise on parked
        bikes is several metres while fences are ~6 x 2 m.
    search_radius_m
        :meth:`lookup` reports the distance to the nearest zone up to this far; beyond it, ``inf``.
    projection
        Metric projection; by default centred on the zones' bounding box.

    Example
    -------
    >>> fence = Zone("F1", "parking_fence", "F1", shapely.box(118.10000, 24.50000, 118.10006, 24.50002))
    >>> idx = ZoneIndex([fence], tolerance_m=3.0, search_radius_m=50.0)
    >>> i, d = idx.lookup(np.array([118.10003, 118.10003, 118.10003]),
    ...                   np.array([24.50001, 24.50004, 24.5003]), "parking_fence")
    >>> i.tolist(), d.round(1).tolist()
    ([0, 0, -1], [0.0, 2.2, 31.0])
    >>> idx.lookup(np.array([118.2]), np.array([24.6]), "parking_fence")[1].tolist()
    [inf]
    """

    def __init__(
        self,
        zones: Sequence[Zone],
        tolerance_m: float = 3.0,
        search_radius_m: float = 50.0,
        projection: LocalProjection | None = None,
    ) -> None:
        self.zones = tuple(zones)
        self.tolerance_m = float(tolerance_m)
        self.search_radius_m = float(search_radius_m)
        if projection is None:
            if not self.zones:
                raise ValueError("an empty ZoneIndex needs an explicit projection")
            b = shapely.bounds(np.array([z.geometry for z in self.zones], dtype=object))
            projection = LocalProjection.around(b[:, [0, 2]].ravel(), b[:, [1, 3]].ravel())
        self.projection = projection
        self._position = {z.zone_id: i for i, z in enumerate(self.zones)}
        if len(self._position) != len(self.zones):
            raise ValueError("zone ids must be unique within an index")
        self._ids = np.array([z.zone_id for z in self.zones] + [""], dtype=object)
        self._trees: dict[str, _KindTree] = {}
        kinds = np.array([z.kind for z in self.zones], dtype=object)
        for kind in dict.fromkeys(kinds.tolist()):
            idx = np.flatnonzero(kinds == kind).astype(np.int64)
            geoms = projection.project(np.array([self.zones[i].geometry for i in idx], dtype=object))
            shapely.prepare(geoms)
            self._trees[kind] = _KindTree(idx, geoms, shapely.STRtree(geoms))

    def __len__(self) -> int:
        return len(self.zones)

    def has(self, kind: str) -> bool:
        """Whether any zone of ``kind`` is indexed."""
        return kind in self._trees

    def position(self, zone_id: str) -> int:
        """Index of the zone with this id (KeyError when absent)."""
        return self._position[zone_id]

    def ids(self, zone_idx: ArrayLike) -> NDArray[np.object_]:
        """Zone ids for an array of indices; ``NO_ZONE`` maps to ``""``."""
        return self._ids[np.asarray(zone_idx, np.int64)]  # type: ignore[no-any-return]

    def points(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.object_]:
        """The positions as projected shapely points (~0.5 us each): for several :meth:`lookup` calls on the same
        positions, make them once and pass them as ``pts``."""
        x, y = self.projection.forward(lon, lat)
        return shapely.points(x, y)  # type: ignore[no-any-return]

    def lookup(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        kind: str,
        tolerance_m: float | None = None,
        search_radius_m: float | None = None,
        pts: NDArray[np.object_] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Matching zone and distance (metres) to the nearest zone of ``kind``, per point.

        The match is the nearest zone within the tolerance (ties: lowest index), else ``NO_ZONE``.
        The distance is 0 inside, exact up to the search radius, ``inf`` beyond it. Pass
        ``search_radius_m=0`` when only the match is needed: it skips the costly nearest search. ``pts``: the
        positions as :meth:`points` already made them (``lon``/``lat`` are then not read).
        """
        tol = self.tolerance_m if tolerance_m is None else float(tolerance_m)
        radius = max(tol, self.search_radius_m if search_radius_m is None else float(search_radius_m))
        if pts is None:
            pts = self.points(lon, lat)
        zone = np.full(len(pts), NO_ZONE, np.int64)
        dist = np.full(len(pts), np.inf)
        kt = self._trees.get(kind)
        if kt is None or len(pts) == 0:
            return zone, dist
        if tol > 0:
            p, t, d = kt.within(pts, tol)
        else:
            p, t = kt.tree.query(pts)
            hit = shapely.intersects(kt.geoms[t], pts[p])  # prepared polygon first: fast
            p, t = p[hit], t[hit]
            d = np.zeros(len(p))
        best = _first_per_point(p, d, kt.zone_idx[t])
        zone[p[best]] = kt.zone_idx[t[best]]
        dist[p[best]] = d[best]
        far = np.flatnonzero(zone == NO_ZONE)
        # Widen the search in geometric steps (ratio <= 5): near points settle on small candidate
        # sets, and only the few far ones pay for the full radius (2x faster than one wide step).
        steps = 0 if radius <= tol else math.ceil(math.log(radius / max(tol, 1.0)) / math.log(5.0))
        for k in range(1, steps + 1):
            margin = radius if k == steps else max(tol, 1.0) * (radius / max(tol, 1.0)) ** (k / steps)
            p, _, d = kt.within(pts[far], round(margin, 3))
            np.minimum.at(dist, far[p], d)
            far = far[np.isinf(dist[far])]
        return zone, dist

    def contains(self, lon: ArrayLike, lat: ArrayLike, kind: str) -> NDArray[np.int64]:
        """Index of the zone of ``kind`` containing each point (boundary included; overlaps: lowest
        index), else ``NO_ZONE``. For attribution to districts, streets, grids, service areas.

        >>> a = Zone("A", "district", "A", shapely.box(118.0, 24.0, 118.1, 24.1))
        >>> ZoneIndex([a]).contains(np.array([118.05, 118.2]), np.array([24.05, 24.05]), "district").tolist()
        [0, -1]
        """
        kt = self._trees.get(kind)
        if kt is None or len(kt.geoms) > _FEW:
            return self.lookup(lon, lat, kind, tolerance_m=0.0, search_radius_m=0.0)[0]
        # Few large zones (service areas, districts): test coordinates against each prepared
        # polygon directly, with no Point objects and no tree.
        x, y = self.projection.forward(lon, lat)
        zone = np.full(x.shape, NO_ZONE, np.int64)
        for i, geom in zip(kt.zone_idx.tolist(), kt.geoms, strict=True):
            free = zone == NO_ZONE
            zone[free] = np.where(shapely.intersects_xy(geom, x[free], y[free]), i, NO_ZONE)
        return zone
