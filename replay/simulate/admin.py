"""Grid management geography: district → street (街道) → grid (网格), a regular partition of the bbox.

Xiamen Island holds two districts: 思明 Siming in the south and 湖里 Huli in the north. Each district
is cut into 5 street columns west to east, each street into 2 × 5 grids, numbered row by row from the
south-west: grid ``SM-03-07`` is grid 7 of street 3 of Siming. The partition is a stand-in for the real
boundaries (which are not open data); its names are real street names of each district.
"""

from __future__ import annotations

__all__ = ["AdminGrid", "DISTRICTS", "zone_feature"]

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from replay.simulate.projection import XIAMEN_BBOX

#: (id, name, street names west → east). The split latitude follows Yundang Lake roughly.
DISTRICTS = (
    ("SM", "思明区", ("中华街道", "开元街道", "梧村街道", "嘉莲街道", "莲前街道")),
    ("HL", "湖里区", ("湖里街道", "殿前街道", "江头街道", "金山街道", "禾山街道")),
)
_SPLIT_LAT = 24.497
_STREET_COLS, _GRID_COLS, _GRID_ROWS = 5, 2, 5


def _box(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


@dataclass(frozen=True)
class AdminGrid:
    """The partition of ``bbox`` into 2 districts, 10 streets and 100 grids, with a vectorized lookup.

    Example
    -------
    >>> a = AdminGrid()
    >>> len(a.grid_ids), a.grid_ids[0], a.grid_ids[-1]
    (100, 'SM-01-01', 'HL-05-10')
    >>> idx = a.grid_index(np.array([118.0675, 118.19, 0.0]), np.array([24.4275, 24.557, 0.0]))
    >>> [a.grid_ids[i] if i >= 0 else None for i in idx]
    ['SM-01-01', 'HL-05-10', None]
    """

    bbox: tuple[float, float, float, float] = XIAMEN_BBOX

    @cached_property
    def grid_ids(self) -> list[str]:
        return [f"{d}-{s + 1:02d}-{g + 1:02d}" for d, _, _ in DISTRICTS
                for s in range(_STREET_COLS) for g in range(_GRID_COLS * _GRID_ROWS)]

    def _rows(self, d: int) -> tuple[float, float]:
        return (self.bbox[1], _SPLIT_LAT) if d == 0 else (_SPLIT_LAT, self.bbox[3])

    def grid_index(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into :attr:`grid_ids` of every point; -1 outside the bbox."""
        lon0, lat0, lon1, lat1 = self.bbox
        lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
        inside = (lon >= lon0) & (lon <= lon1) & (lat >= lat0) & (lat <= lat1)
        d = (lat >= _SPLIT_LAT).astype(np.int64)
        y0 = np.where(d == 0, lat0, _SPLIT_LAT)
        y1 = np.where(d == 0, _SPLIT_LAT, lat1)
        ncol = _STREET_COLS * _GRID_COLS
        col = np.clip(np.floor((lon - lon0) / (lon1 - lon0) * ncol), 0, ncol - 1).astype(np.int64)
        row = np.clip(np.floor((lat - y0) / (y1 - y0) * _GRID_ROWS), 0, _GRID_ROWS - 1).astype(np.int64)
        street, gcol = col // _GRID_COLS, col % _GRID_COLS
        idx = d * (_STREET_COLS * _GRID_COLS * _GRID_ROWS) + street * (_GRID_COLS * _GRID_ROWS) \
            + row * _GRID_COLS + gcol
        return np.where(inside, idx, -1)

    def features(self) -> list[dict[str, Any]]:
        """GeoJSON features of every district, street and grid (``kind`` and ``parent`` set)."""
        lon0, _, lon1, _ = self.bbox
        sw = (lon1 - lon0) / _STREET_COLS
        gw = sw / _GRID_COLS
        out: list[dict[str, Any]] = []
        for d, (did, dname, streets) in enumerate(DISTRICTS):
            y0, y1 = self._rows(d)
            gh = (y1 - y0) / _GRID_ROWS
            out.append(zone_feature(did, "district", dname, None, _box(lon0, y0, lon1, y1)))
            for s, sname in enumerate(streets):
                sid, sx = f"{did}-{s + 1:02d}", lon0 + s * sw
                out.append(zone_feature(sid, "street", sname, did, _box(sx, y0, sx + sw, y1)))
                for g in range(_GRID_COLS * _GRID_ROWS):
                    r, c = divmod(g, _GRID_COLS)
                    gx, gy = sx + c * gw, y0 + r * gh
                    out.append(zone_feature(f"{sid}-{g + 1:02d}", "grid", f"{sname}第{g + 1:02d}网格", sid,
                                        _box(gx, gy, gx + gw, gy + gh)))
        return out


def zone_feature(zone_id: str, kind: str, name: str, parent: str | None,
                 rings: list[list[list[float]]], capacity: int | None = None,
                 ndigits: int | None = 7) -> dict[str, Any]:
    """One GeoJSON polygon feature with the zone properties the pipeline loads.

    Coordinates are rounded to ``ndigits`` decimals (7: ~1 cm); ``None`` keeps them as given.
    """
    rounded = rings if ndigits is None else [[[round(x, ndigits), round(y, ndigits)] for x, y in ring]
                                             for ring in rings]
    return {"type": "Feature",
            "properties": {"zone_id": zone_id, "kind": kind, "name": name, "capacity": capacity,
                           "parent": parent},
            "geometry": {"type": "Polygon", "coordinates": rounded}}
