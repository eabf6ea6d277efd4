"""Geography: zones and their loaders, a local metric projection, and a vectorized zone index."""

from __future__ import annotations

__all__ = [
    "ZONE_KINDS",
    "NO_ZONE",
    "LoadResult",
    "LocalProjection",
    "PropertyMapping",
    "Rejected",
    "Zone",
    "ZoneIndex",
    "ZoneLoadError",
    "load_dcic_fences",
    "load_geojson",
]

from models.geo.index import NO_ZONE, ZoneIndex
from models.geo.projection import LocalProjection
from models.geo.zones import (
    ZONE_KINDS,
    LoadResult,
    PropertyMapping,
    Rejected,
    Zone,
    ZoneLoadError,
    load_dcic_fences,
    load_geojson,
)
