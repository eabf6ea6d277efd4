"""Electronic parking fences (电子围栏): read from the DCIC file or generated, kept in metres.

A fence is a small quadrilateral (the DCIC median is ~6.1 × 1.7 m). The DCIC file
``gxdc_tcd.csv`` has columns ``FENCE_ID,FENCE_LOC`` where ``FENCE_LOC`` is a closed ring of five
``[lon,lat]`` points written without the outer brackets, and starts with a UTF-8 BOM.
"""

from __future__ import annotations

__all__ = ["FenceSet", "read_fence_csv", "generate_fence_rings"]

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import shapely

from replay.simulate.projection import LocalProjection


def read_fence_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Read a DCIC fence file; return ids and an ``(F, 5, 2)`` array of closed ``[lon, lat]`` rings.

    Rows whose ring is not four distinct corners (closed or not) are skipped; a repeated id gets a
    ``#n`` suffix so zone ids stay unique.
    """
    ids: list[str] = []
    rings: list[list[list[float]]] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            fid, loc = (row.get("FENCE_ID") or "").strip(), (row.get("FENCE_LOC") or "").strip()
            try:
                pts = orjson.loads(loc if loc.startswith("[[") else f"[{loc}]")
                ring = [[float(p[0]), float(p[1])] for p in pts]
            except (orjson.JSONDecodeError, TypeError, ValueError, IndexError):
                continue
            if len(ring) == 4:
                ring.append(ring[0])
            if not fid or len(ring) != 5 or ring[0] != ring[4]:
                continue
            n = seen.get(fid, 0)
            seen[fid] = n + 1
            ids.append(fid if n == 0 else f"{fid}#{n}")
            rings.append(ring)
    return ids, np.asarray(rings, np.float64).reshape(-1, 5, 2)


def generate_fence_rings(rng: np.random.Generator, n: int, area: shapely.Polygon) -> np.ndarray:
    """``n`` rectangles of ~6 × 2 m at random orientation with centres inside ``area`` (metres).

    Returns an ``(n, 5, 2)`` array of closed rings in metres.
    """
    minx, miny, maxx, maxy = area.bounds
    centres = np.empty((0, 2))
    while len(centres) < n:
        c = rng.uniform((minx, miny), (maxx, maxy), size=(2 * n, 2))
        centres = np.concatenate([centres, c[shapely.contains_xy(area, c[:, 0], c[:, 1])]])
    centres = centres[:n]
    length, width = rng.uniform(4.0, 8.0, n), rng.uniform(1.5, 2.5, n)
    ang = rng.uniform(0.0, np.pi, n)
    u = np.stack([np.cos(ang), np.sin(ang)], axis=1) * (length / 2)[:, None]
    v = np.stack([-np.sin(ang), np.cos(ang)], axis=1) * (width / 2)[:, None]
    corners = [centres - u - v, centres + u - v, centres + u + v, centres - u + v, centres - u - v]
    return np.stack(corners, axis=1)


@dataclass
class FenceSet:
    """Fences as arrays: ids, rings in degrees and metres, capacities, and an STRtree (metres).

    Example
    -------
    >>> proj = LocalProjection()
    >>> ring = np.array([[[0, 0], [6, 0], [6, 2], [0, 2], [0, 0]]], float)
    >>> fs = FenceSet(["F1"], proj.coords_to_lonlat(ring), ring)
    >>> int(fs.capacity[0]), fs.nearest(np.array([3.0, 10.0]), np.array([1.0, 1.0]))[1].round(1).tolist()
    (12, [0.0, 4.0])
    >>> x, y = fs.sample(np.array([0, 0]), np.random.default_rng(0))
    >>> bool(shapely.contains_xy(fs.polygons[0], x, y).all())
    True
    """

    ids: list[str]
    lonlat: np.ndarray  # (F, 5, 2) closed rings, degrees (exactly as written to the GeoJSON)
    xy: np.ndarray  # (F, 5, 2) the same rings in metres
    capacity: np.ndarray = field(init=False)
    polygons: np.ndarray = field(init=False)
    tree: shapely.STRtree = field(init=False)
    centroid: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.polygons = shapely.polygons(self.xy)
        self.tree = shapely.STRtree(self.polygons)
        self.centroid = self.xy[:, :4].mean(axis=1)
        # about one bike per square metre, bounded to the 5–30 a fence sign typically allows
        self.capacity = np.clip(np.rint(shapely.area(self.polygons)), 5, 30).astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_lonlat(cls, ids: list[str], lonlat: np.ndarray, proj: LocalProjection) -> FenceSet:
        return cls(ids, lonlat, proj.coords_to_xy(lonlat))

    def subset(self, keep: np.ndarray) -> FenceSet:
        """The fences at integer positions ``keep`` (in that order)."""
        return FenceSet([self.ids[i] for i in keep.tolist()], self.lonlat[keep], self.xy[keep])

    def sample(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random point strictly inside each fence ``idx`` (bilinear, 10% margin from edges)."""
        q = self.xy[idx]
        u, w = rng.uniform(0.1, 0.9, (2, len(idx), 1))
        p = (1 - u) * (1 - w) * q[:, 0] + u * (1 - w) * q[:, 1] + u * w * q[:, 2] + (1 - u) * w * q[:, 3]
        return p[:, 0], p[:, 1]

    def nearest(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of and distance (m) to the nearest fence of every point (0 inside a fence)."""
        (src, dst), dist = self.tree.query_nearest(shapely.points(x, y), return_distance=True,
                                                   all_matches=False)
        out_i = np.empty(len(x), np.int64)
        out_d = np.empty(len(x), np.float64)
        out_i[src], out_d[src] = dst, dist
        return out_i, out_d
