"""Zones (no-parking areas, parking fences, districts, grids, ...) and their loaders.

A :class:`Zone` carries its polygon in WGS84 degrees. Loaders never drop a bad feature silently: they
return a :class:`LoadResult` holding the good zones and one :class:`Rejected` (index, id, reason) per bad
feature; call :meth:`LoadResult.raise_if_rejected` to make any rejection fatal.
"""

from __future__ import annotations

__all__ = [
    "ZONE_KINDS",
    "Zone",
    "PropertyMapping",
    "Rejected",
    "LoadResult",
    "ZoneLoadError",
    "load_geojson",
    "load_dcic_fences",
]

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

#: Zone kinds. ``fence_required_area``: parking outside every ``parking_fence`` there is a violation.
ZONE_KINDS = (
    "no_parking", "parking_fence", "fence_required_area", "service_area",
    "district", "street", "community", "grid",
)
_KIND_ALIASES = {
    "禁停区": "no_parking", "电子围栏": "parking_fence", "停车围栏": "parking_fence",
    "入栏结算区": "fence_required_area", "运营区": "service_area", "服务区": "service_area",
    "区": "district", "街道": "street", "社区": "community", "网格": "grid",
}


@dataclass(frozen=True, slots=True)
class Zone:
    """One zone; ``geometry`` is a (Multi)Polygon in WGS84 degrees (x = lon, y = lat).

    Example
    -------
    >>> z = Zone("NP-1", "no_parking", "skybridge", shapely.box(118.1, 24.4, 118.2, 24.5))
    >>> z.kind, z.capacity, z.geometry.geom_type
    ('no_parking', None, 'Polygon')
    """

    zone_id: str
    kind: str
    name: str
    geometry: BaseGeometry
    capacity: int | None = None
    parent: str | None = None
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class PropertyMapping:
    """Which GeoJSON property holds each zone attribute; dotted names reach into nested objects.

    ``constant_kind`` gives every feature of the file that kind (for single-kind files). A missing id
    property falls back to the feature's own ``id`` member. ``kind_aliases`` maps local names
    (e.g. ``禁停区``) to :data:`ZONE_KINDS`.

    Example
    -------
    >>> m = PropertyMapping(id="adcode", parent="parent.adcode", constant_kind="district")
    >>> m.get({"adcode": 350203, "parent": {"adcode": 350200}}, m.parent)
    350200
    """

    id: str = "zone_id"
    kind: str = "kind"
    name: str = "name"
    capacity: str = "capacity"
    parent: str = "parent"
    operator: str = "operator"
    constant_kind: str | None = None
    kind_aliases: Mapping[str, str] = field(default_factory=lambda: dict(_KIND_ALIASES), hash=False)

    @staticmethod
    def get(properties: Mapping[str, Any], path: str) -> Any:
        """The value at a dotted ``path`` of ``properties`` (None when absent)."""
        value: Any = properties
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value


@dataclass(frozen=True, slots=True)
class Rejected:
    """A feature or row that was not loaded: its position in the source, its id if known, and why."""

    index: int
    zone_id: str | None
    reason: str


class ZoneLoadError(ValueError):
    """Raised by :meth:`LoadResult.raise_if_rejected`; carries the rejections."""

    def __init__(self, rejected: tuple[Rejected, ...]) -> None:
        head = "; ".join(f"#{r.index} {r.zone_id or '?'}: {r.reason}" for r in rejected[:5])
        super().__init__(f"{len(rejected)} zone(s) rejected: {head}")
        self.rejected = rejected


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Loaded zones plus one :class:`Rejected` per bad feature."""

    zones: tuple[Zone, ...]
    rejected: tuple[Rejected, ...] = ()

    def raise_if_rejected(self) -> tuple[Zone, ...]:
        """The zones, or :class:`ZoneLoadError` when any feature was rejected."""
        if self.rejected:
            raise ZoneLoadError(self.rejected)
        return self.zones


def _in_range(geom: BaseGeometry) -> bool:
    minx, miny, maxx, maxy = geom.bounds
    return -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0


def _geometry_problem(geom: BaseGeometry) -> str | None:
    if geom.is_empty:
        return "empty geometry"
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return f"geometry type {geom.geom_type} is not polygonal"
    if not _in_range(geom):
        return "coordinates outside WGS84 lon/lat range"
    if not geom.is_valid:
        return f"invalid geometry: {shapely.is_valid_reason(geom)}"
    return None


def _capacity(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError
    number = float(value)  # ValueError / TypeError for junk
    if number < 0 or number != int(number):
        raise ValueError
    return int(number)


def _feature_zone(feature: Any, m: PropertyMapping) -> Zone | str:
    """A zone, or the reason the feature is bad."""
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        return "not a GeoJSON Feature"
    props = feature.get("properties") or {}
    if not isinstance(props, Mapping):
        return "properties is not an object"
    raw_id = m.get(props, m.id)
    raw_id = feature.get("id") if raw_id is None else raw_id
    if raw_id is None or isinstance(raw_id, Mapping | list) or str(raw_id) == "":
        return f"missing id (property {m.id!r})"
    raw_kind = m.constant_kind or m.get(props, m.kind)
    kind = m.kind_aliases.get(raw_kind, raw_kind) if isinstance(raw_kind, str) else raw_kind
    if kind not in ZONE_KINDS:
        return f"unknown kind {raw_kind!r}"
    try:
        capacity = _capacity(m.get(props, m.capacity))
    except (TypeError, ValueError):
        return f"capacity {m.get(props, m.capacity)!r} is not a non-negative integer"
    if feature.get("geometry") is None:
        return "missing geometry"
    try:
        geom = shape(feature["geometry"])
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        return f"unreadable geometry: {exc}"[:200]
    problem = _geometry_problem(geom)
    if problem:
        return problem
    name, parent, op = (m.get(props, p) for p in (m.name, m.parent, m.operator))
    return Zone(
        str(raw_id), kind, str(name) if name is not None else str(raw_id), geom, capacity,
        None if parent is None else str(parent), None if op is None else str(op),
    )


def _collect(candidates: list[tuple[int, str | None, Zone | str]]) -> LoadResult:
    zones: list[Zone] = []
    rejected: list[Rejected] = []
    first_at: dict[str, int] = {}
    for index, zone_id, outcome in candidates:
        if isinstance(outcome, str):
            rejected.append(Rejected(index, zone_id, outcome))
        elif outcome.zone_id in first_at:
            reason = f"duplicate id (first at #{first_at[outcome.zone_id]})"
            rejected.append(Rejected(index, outcome.zone_id, reason))
        else:
            first_at[outcome.zone_id] = index
            zones.append(outcome)
    return LoadResult(tuple(zones), tuple(rejected))


def load_geojson(
    source: str | os.PathLike[str] | Mapping[str, Any], mapping: PropertyMapping | None = None
) -> LoadResult:
    """Zones from a GeoJSON FeatureCollection (or one Feature), given as a path or a decoded dict.

    Example
    -------
    >>> fc = {"type": "FeatureCollection", "features": [
    ...     {"type": "Feature", "properties": {"zone_id": "NP-1", "kind": "禁停区"},
    ...      "geometry": {"type": "Polygon", "coordinates": [[[118, 24], [118.1, 24], [118, 24.1], [118, 24]]]}},
    ...     {"type": "Feature", "properties": {"zone_id": "F-1", "kind": "parking_fence", "capacity": "x"},
    ...      "geometry": {"type": "Point", "coordinates": [118, 24]}}]}
    >>> res = load_geojson(fc)
    >>> [(z.zone_id, z.kind) for z in res.zones], res.rejected[0].reason
    ([('NP-1', 'no_parking')], "capacity 'x' is not a non-negative integer")
    """
    m = mapping or PropertyMapping()
    doc = source if isinstance(source, Mapping) else orjson.loads(Path(source).read_bytes())
    if doc.get("type") == "Feature":
        features: Any = [doc]
    elif doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list):
        features = doc["features"]
    else:
        raise ValueError("not a GeoJSON FeatureCollection or Feature")
    candidates: list[tuple[int, str | None, Zone | str]] = []
    for i, feature in enumerate(features):
        outcome = _feature_zone(feature, m)
        props = feature.get("properties") if isinstance(feature, Mapping) else None
        raw_id = m.get(props, m.id) if isinstance(props, Mapping) else None
        candidates.append((i, None if raw_id is None else str(raw_id), outcome))
    return _collect(candidates)


def load_dcic_fences(
    path: str | os.PathLike[str], capacity: int | None = None, operator: str | None = None
) -> LoadResult:
    """Parking fences from the DCIC ``gxdc_tcd.csv`` layout (``FENCE_ID,FENCE_LOC``, optional BOM).

    ``FENCE_LOC`` is a closed ring of ``[lon,lat]`` pairs. Every fence gets kind ``parking_fence``
    and the given ``capacity`` (the file has none). Row indices in rejections count data rows from 0.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if "FENCE_ID" not in header or "FENCE_LOC" not in header:
            raise ValueError(f"not a DCIC fence file: header {header!r}")
        i_id, i_loc = header.index("FENCE_ID"), header.index("FENCE_LOC")
        rows = list(reader)
    candidates: list[tuple[int, str | None, Zone | str]] = []
    rings: list[tuple[int, str, list[list[float]]]] = []
    for i, row in enumerate(rows):
        fid = row[i_id].strip() if len(row) > max(i_id, i_loc) else ""
        if not fid:
            candidates.append((i, None, "missing FENCE_ID or FENCE_LOC"))
            continue
        try:
            ring = orjson.loads("[" + row[i_loc] + "]")
        except orjson.JSONDecodeError:
            ring = None
        if not all(
            isinstance(p, list) and len(p) == 2 and all(type(v) in (int, float) for v in p)
            for p in ring or [None]
        ):
            candidates.append((i, fid, "FENCE_LOC is not a list of [lon,lat] pairs"))
        elif len(ring) < 4:
            candidates.append((i, fid, "FENCE_LOC needs at least 4 [lon,lat] points"))
        elif ring[0] != ring[-1]:
            candidates.append((i, fid, "FENCE_LOC ring is not closed"))
        else:
            rings.append((i, fid, ring))
    # Build and validate polygons per ring length in vectorized calls: the 14k real fences load in ~0.25 s.
    by_len: dict[int, list[tuple[int, str, list[list[float]]]]] = {}
    for item in rings:
        by_len.setdefault(len(item[2]), []).append(item)
    for group in by_len.values():
        polygons = shapely.polygons(np.asarray([r for _, _, r in group], np.float64))
        valid = shapely.is_valid(polygons)
        b = shapely.bounds(polygons)
        in_range = (b[:, 0] >= -180) & (b[:, 2] <= 180) & (b[:, 1] >= -90) & (b[:, 3] <= 90)
        for (i, fid, _), geom, ok in zip(group, polygons, (valid & in_range).tolist(), strict=True):
            problem = None if ok else _geometry_problem(geom)
            outcome = problem or Zone(fid, "parking_fence", fid, geom, capacity, None, operator)
            candidates.append((i, fid, outcome))
    candidates.sort(key=lambda c: c[0])
    return _collect(candidates)
