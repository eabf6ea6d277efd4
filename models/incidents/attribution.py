"""Attribute a case's location to the grid-management hierarchy: district → street → community → grid.

Zones come from the geography loader (:func:`models.geo.zones.load_geojson`; kinds ``district``,
``street``, ``community``, ``grid``). Where no ``grid`` zones are configured, the grid is the square
cell of :class:`models.grid.GridZones` (``g<col>_<row>``, ``cell_m`` wide) that the bike counters
use too; a missing level is ``""``. Lookups are vectorized over a batch of points.
"""

from __future__ import annotations

__all__ = ["Place", "Attributor", "LEVELS"]

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.geo.index import ZoneIndex
from models.geo.zones import Zone
from models.grid import GridZones

#: Attribution levels, coarse to fine; each is a zone kind of :data:`models.geo.zones.ZONE_KINDS`.
LEVELS = ("district", "street", "community", "grid")


@dataclass(frozen=True, slots=True)
class Place:
    """Zone ids of a location (``""`` where none contains it)."""

    district: str = ""
    street: str = ""
    community: str = ""
    grid: str = ""


class Attributor:
    """Find the district, street, community and grid of points.

    Parameters
    ----------
    zones
        Zones of any kinds; only the kinds in :data:`LEVELS` are used.
    cell_m
        Cell size of the fallback grid when no ``grid`` zones are given.

    Example
    -------
    >>> import shapely
    >>> a = Attributor([Zone("SM", "district", "思明区", shapely.box(118.0, 24.4, 118.2, 24.5)),
    ...                 Zone("SM-01", "street", "中华街道", shapely.box(118.0, 24.4, 118.1, 24.5))])
    >>> a.places(np.array([118.05, 118.15, 119.0]), np.array([24.45, 24.45, 24.45]))
    [Place(district='SM', street='SM-01', community='', grid='g...'),
     Place(district='SM', street='', community='', grid='g...'), Place(district='', ...)]
    """

    def __init__(self, zones: Sequence[Zone] = (), cell_m: float = 500.0) -> None:
        admin = [z for z in zones if z.kind in LEVELS]
        self.index = ZoneIndex(admin) if admin else None
        self.fallback = None if self.index is not None and self.index.has("grid") else GridZones(cell_m)

    def places(self, lon: np.ndarray, lat: np.ndarray) -> list[Place]:
        """The :class:`Place` of every point."""
        lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
        cols: dict[str, list[str]] = {}
        for level in LEVELS:
            if self.index is not None and self.index.has(level):
                cols[level] = self.index.ids(self.index.contains(lon, lat, level)).tolist()
            else:
                cols[level] = [""] * len(lon)
        if self.fallback is not None:
            cols["grid"] = self.fallback.cells(lon, lat).tolist()
        return [Place(*row) for row in zip(*(cols[level] for level in LEVELS), strict=True)]

    def place(self, lon: float, lat: float) -> Place:
        """The :class:`Place` of one point."""
        return self.places(np.array([lon]), np.array([lat]))[0]
