"""The simulated city's zones: fences, no-parking zones, the fence-required area and the grid tree.

Everything is written as one GeoJSON FeatureCollection, ``geography.geojson``, one feature per line.
Every feature has the properties ``zone_id``, ``kind``, ``name``, ``capacity`` and ``parent``:

===================== ============================================= ==============================
kind                  what                                          capacity / parent
===================== ============================================= ==============================
fence_required_area   Xiamen Island: bikes must park inside a fence  null / null
district              思明 Siming, 湖里 Huli                          null / null
street                5 per district                                 null / district id
grid                  10 per street (``SM-03-07``)                   null / street id
no_parking            禁停区: skybridges, metro exits, plazas, …      null / grid id of its centre
parking_fence         电子围栏                                        bikes (int, 5–30) / grid id
===================== ============================================= ==============================

No fence lies within :data:`FENCE_CLEARANCE_M` of a no-parking zone, so a bike parked in a fence is
never near one by construction.
"""

from __future__ import annotations

__all__ = ["Geography", "build_geography", "FRA_ID", "FRA_RING", "FENCE_CLEARANCE_M"]

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely

from replay.simulate.admin import AdminGrid, zone_feature
from replay.simulate.fences import FenceSet, generate_fence_rings, read_fence_csv
from replay.simulate.projection import LocalProjection

FRA_ID = "FRA-XMD"
#: Xiamen Island, roughly (lon, lat); covers >99% of the DCIC fences.
FRA_RING = ((118.067, 24.440), (118.067, 24.470), (118.068, 24.490), (118.078, 24.505),
            (118.083, 24.530), (118.093, 24.545), (118.110, 24.558), (118.135, 24.558),
            (118.160, 24.556), (118.180, 24.545), (118.193, 24.525), (118.193, 24.470),
            (118.185, 24.450), (118.170, 24.437), (118.150, 24.430), (118.120, 24.427),
            (118.090, 24.427), (118.075, 24.432), (118.067, 24.440))  # fmt: skip
FENCE_CLEARANCE_M = 20.0
_PLACES = ("曾厝垵", "中山路", "火车站", "镇海路", "湖滨东路", "莲坂", "吕厝", "乌石浦", "殿前", "高崎",
           "厦门大学", "白城", "筼筜湖", "观音山", "五缘湾", "文灶", "江头", "湖里公园", "SM商圈", "将军祠")
#: kind → (Chinese name, length range m, width range m); metro exits are round (length = diameter).
_ZONE_SHAPES = {"skybridge": ("人行天桥", (30, 120), (8, 20)), "metro_exit": ("地铁出入口", (20, 80), (0, 0)),
                "plaza": ("广场", (80, 200), (60, 150)), "bus_stop": ("公交站台", (20, 60), (6, 12))}
_POOL = 256


@dataclass
class NoParkingZones:
    """禁停区 polygons in metres plus, per zone, a pool of points at least 1 m inside it."""

    ids: list[str]
    names: list[str]
    polygons: list[shapely.Polygon]
    pools: np.ndarray  # (Z, _POOL, 2) metres
    tree: shapely.STRtree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = shapely.STRtree(self.polygons)

    def nearest(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of and distance (m) to the nearest zone of every point."""
        (src, dst), dist = self.tree.query_nearest(shapely.points(x, y), return_distance=True,
                                                   all_matches=False)
        out_i, out_d = np.empty(len(x), np.int64), np.empty(len(x), np.float64)
        out_i[src], out_d[src] = dst, dist
        return out_i, out_d


@dataclass
class Geography:
    """All zones of the simulated city, in metres (``proj``) and as GeoJSON.

    Example
    -------
    >>> g = build_geography(np.random.default_rng(1), n_fences=50, n_zones=4)
    >>> len(g.fences) <= 50, len(g.zones.ids), g.admin.grid_ids[0]
    (True, 4, 'SM-01-01')
    >>> kinds = {f["properties"]["kind"] for f in orjson.loads(g.to_geojson())["features"]}
    >>> sorted(kinds)
    ['district', 'fence_required_area', 'grid', 'no_parking', 'parking_fence', 'street']
    """

    proj: LocalProjection
    fra: shapely.Polygon  # metres
    fences: FenceSet
    zones: NoParkingZones
    admin: AdminGrid

    def grid_of(self, x: np.ndarray, y: np.ndarray) -> list[str | None]:
        """Grid id of every point given in metres (``None`` outside the bbox)."""
        idx = self.admin.grid_index(*self.proj.to_lonlat(x, y))
        ids = self.admin.grid_ids
        return [ids[i] if i >= 0 else None for i in idx.tolist()]

    def to_geojson(self) -> bytes:
        """The FeatureCollection, one feature per line (deterministic bytes)."""
        feats = [zone_feature(FRA_ID, "fence_required_area", "厦门岛电子围栏停放区", None,
                              [[list(p) for p in FRA_RING]])]
        feats += self.admin.features()
        zparents = self.grid_of(*np.array([p.centroid.coords[0] for p in self.zones.polygons]).T)
        for zid, name, poly, parent in zip(self.zones.ids, self.zones.names, self.zones.polygons,
                                           zparents, strict=True):
            ring = self.proj.coords_to_lonlat(np.asarray(poly.exterior.coords))
            feats.append(zone_feature(zid, "no_parking", name, parent, [ring.tolist()]))
        fparents = self.grid_of(self.fences.centroid[:, 0], self.fences.centroid[:, 1])
        for i, fid in enumerate(self.fences.ids):
            feats.append(zone_feature(fid, "parking_fence", fid, fparents[i],
                                      [self.fences.lonlat[i].tolist()], int(self.fences.capacity[i]), None))
        return b'{"type":"FeatureCollection","features":[\n' + b",\n".join(
            orjson.dumps(f) for f in feats) + b"\n]}\n"


def build_geography(rng: np.random.Generator, *, n_fences: int, n_zones: int = 36,
                    fences: Path | None = None) -> Geography:
    """Build the zones: ``n_fences`` fences (a seeded subset of the file's, or generated) and zones.

    Fences within :data:`FENCE_CLEARANCE_M` of a no-parking zone are dropped afterwards, so the
    result may hold slightly fewer than ``n_fences``.
    """
    proj = LocalProjection()
    fra = shapely.Polygon(proj.coords_to_xy(np.array(FRA_RING)))
    if fences is not None:
        ids, rings = read_fence_csv(fences)
        if not ids:
            raise ValueError(f"{fences}: no usable fence rows (expected FENCE_ID,FENCE_LOC)")
        fs = FenceSet.from_lonlat(ids, rings, proj)
        if n_fences < len(fs):
            fs = fs.subset(np.sort(rng.choice(len(fs), n_fences, replace=False)))
    else:
        rings = np.round(proj.coords_to_lonlat(generate_fence_rings(rng, n_fences, fra)), 7)
        fs = FenceSet.from_lonlat([f"FN-{i + 1:05d}" for i in range(n_fences)], rings, proj)
    zones = _make_zones(rng, n_zones, fra, fs)
    near = np.unique(zones.tree.query(fs.polygons, predicate="dwithin", distance=FENCE_CLEARANCE_M)[0])
    keep = np.setdiff1d(np.arange(len(fs)), near)
    return Geography(proj, fra, fs.subset(keep) if len(near) else fs, zones, AdminGrid())


def _make_zones(rng: np.random.Generator, n: int, fra: shapely.Polygon, fs: FenceSet) -> NoParkingZones:
    """Zones near random fences (where bikes are), inside the area, 30 m or more apart."""
    kinds = list(_ZONE_SHAPES)
    polys: list[shapely.Polygon] = []
    names: list[str] = []
    for z in range(n):
        kind = kinds[z % len(kinds)]
        zh, (l0, l1), (w0, w1) = _ZONE_SHAPES[kind]
        for _ in range(200):
            anchor = fs.centroid[rng.integers(len(fs))]
            ang = rng.uniform(0, 2 * np.pi)
            c = anchor + rng.uniform(20, 80) * np.array([np.cos(ang), np.sin(ang)])
            poly = _shape(c, rng.uniform(l0, l1), rng.uniform(w0, w1) if w1 else 0.0, rng.uniform(0, np.pi))
            if fra.contains(poly) and all(poly.distance(p) > 30 for p in polys):
                break
        polys.append(poly)
        suffix = f"{z // len(_PLACES) + 1}号" if z >= len(_PLACES) else ""
        names.append(f"{_PLACES[z % len(_PLACES)]}{zh}禁停区{suffix}")
    pools = np.stack([_pool(rng, p.buffer(-1.0)) for p in polys]) if polys else np.empty((0, _POOL, 2))
    return NoParkingZones([f"NP-{i + 1:03d}" for i in range(n)], names, polys, pools)


def _shape(c: np.ndarray, length: float, width: float, ang: float) -> shapely.Polygon:
    if width == 0.0:  # round: a metro exit plaza
        return shapely.Point(c).buffer(length / 2, quad_segs=4)
    u = np.array([np.cos(ang), np.sin(ang)]) * length / 2
    v = np.array([-np.sin(ang), np.cos(ang)]) * width / 2
    return shapely.Polygon([c - u - v, c + u - v, c + u + v, c - u + v])


def _pool(rng: np.random.Generator, poly: Any) -> np.ndarray:
    minx, miny, maxx, maxy = poly.bounds
    pts = np.empty((0, 2))
    while len(pts) < _POOL:
        c = rng.uniform((minx, miny), (maxx, maxy), size=(_POOL, 2))
        pts = np.concatenate([pts, c[shapely.contains_xy(poly, c[:, 0], c[:, 1])]])
    return pts[:_POOL]
