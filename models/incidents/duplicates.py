"""Link repeated reports of the same problem to one parent case.

Several citizens often report the same overflowing bin or open manhole. A report of the same
subcategory (or category, see ``match_on``) within ``distance_m`` metres and ``window_ms`` of an
earlier report becomes a child of that report's parent: the earliest case of the cluster. Once the parent
is forgotten (closed or rejected, see :meth:`DuplicateLinker.forget`) or has expired, later reports
link to the matching report itself instead.

Reports are kept in a grid of cells ``distance_m`` wide (in degrees, sized at ``ref_lat``), so a
lookup scans only the neighbouring cells, never every pair. Reports older than the newest seen
event time minus ``window_ms`` are evicted, which bounds the state.
"""

from __future__ import annotations

__all__ = ["DuplicateLinker", "haversine_m"]

import heapq
import math
from dataclasses import dataclass
from typing import Any, Literal

from models.incidents.lifecycle import event_ms

_EARTH_R = 6_371_008.8  # mean Earth radius, m
_M_PER_DEG_LAT = math.pi * _EARTH_R / 180


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres.

    Example
    -------
    >>> round(haversine_m(24.48, 118.09, 24.4809, 118.09), 1)
    100.1
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_R * math.asin(min(1.0, math.sqrt(a)))


@dataclass(slots=True)
class _Report:
    case_id: str
    key: str
    ts: int
    lat: float
    lon: float
    cell: tuple[int, int]
    parent: str | None


class DuplicateLinker:
    """Find the parent case of a new report.

    Parameters
    ----------
    distance_m
        Maximum distance between two reports of one problem.
    window_ms
        Maximum time between them (either direction).
    match_on
        ``"subcategory"`` (default; falls back to the category when a report has none) or
        ``"category"``.
    ref_lat
        Latitude at which grid cells are ``distance_m`` wide (Xiamen by default). Lookups stay
        exact at any latitude; only efficiency depends on it.

    Example
    -------
    >>> d = DuplicateLinker()
    >>> t0 = 1795244400000
    >>> r = {"category": "E01", "subcategory": "E0102", "lat": 24.48, "lon": 118.09}
    >>> d.link({**r, "case_id": "A", "ts": t0}) is None
    True
    >>> d.link({**r, "case_id": "B", "ts": t0 + 600_000, "lat": 24.4802})
    'A'
    >>> d.link({**r, "case_id": "C", "ts": t0 + 600_000, "lat": 24.4810}) is None   # 111 m away
    True
    """

    def __init__(
        self,
        distance_m: float = 50.0,
        window_ms: int = 30 * 60_000,
        match_on: Literal["subcategory", "category"] = "subcategory",
        ref_lat: float = 24.48,
    ) -> None:
        if distance_m <= 0 or window_ms < 0:
            raise ValueError("distance_m must be > 0 and window_ms >= 0")
        if match_on not in ("subcategory", "category"):
            raise ValueError(f"match_on must be 'subcategory' or 'category', not {match_on!r}")
        self.distance_m = distance_m
        self.window_ms = window_ms
        self.match_on = match_on
        self.ref_lat = ref_lat
        self._dlat = distance_m / _M_PER_DEG_LAT
        self._dlon = distance_m / (_M_PER_DEG_LAT * math.cos(math.radians(ref_lat)))
        self._cells: dict[tuple[str, int, int], dict[str, _Report]] = {}
        self._by_id: dict[str, _Report] = {}
        self._expiry: list[tuple[int, str]] = []
        self._clock: int | None = None
        #: Match keys whose held reports changed since the caller last cleared this set.
        self.touched: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._by_id

    def match_key(self, report: dict[str, Any]) -> str | None:
        """The key two reports must share to be compared (subcategory or category), or None.

        Example
        -------
        >>> DuplicateLinker().match_key({"category": "E01", "subcategory": "E0102"})
        'E0102'
        >>> DuplicateLinker(match_on="category").match_key({"category": "E01", "subcategory": "E0102"})
        'E01'
        """
        return self._key(report)

    def reports(self, key: str) -> list[tuple[str, int, float, float, str | None]]:
        """Held reports of one match key as ``(case_id, ts, lat, lon, parent)``, oldest first."""
        rows = [(r.case_id, r.ts, r.lat, r.lon, r.parent) for r in self._by_id.values() if r.key == key]
        return sorted(rows, key=lambda r: (r[1], r[0]))

    def restore(self, case_id: str, key: str, ts: int, lat: float, lon: float, parent: str | None) -> None:
        """Hold a report again after a restart (as :meth:`link` recorded it), without matching it."""
        if case_id in self._by_id:
            return
        cell = (math.floor(lat / self._dlat), math.floor(lon / self._dlon))
        rec = _Report(case_id, key, ts, float(lat), float(lon), cell, parent)
        self._by_id[case_id] = rec
        self._cells.setdefault((key, *cell), {})[case_id] = rec
        heapq.heappush(self._expiry, (ts, case_id))
        if self._clock is None or ts > self._clock:
            self._clock = ts

    def _key(self, report: dict[str, Any]) -> str | None:
        if self.match_on == "subcategory" and report.get("subcategory"):
            return str(report["subcategory"])
        return str(report["category"]) if report.get("category") else None

    def link(self, report: dict[str, Any]) -> str | None:
        """Record ``report`` and return its parent case id, or ``None`` if it is a new problem.

        ``report`` needs ``case_id``, ``ts``, ``lat``, ``lon`` and ``category`` (and ideally
        ``subcategory``); without a location or category it cannot be matched and ``None`` is
        returned without recording it. A report already seen (same ``case_id``) gets the same
        answer again.
        """
        case_id = str(report["case_id"])
        known = self._by_id.get(case_id)
        if known is not None:
            return known.parent
        key, lat, lon = self._key(report), report.get("lat"), report.get("lon")
        if key is None or not isinstance(lat, int | float) or not isinstance(lon, int | float):
            return None
        ts = event_ms(report["ts"])
        self._expire(ts)
        cell = (math.floor(lat / self._dlat), math.floor(lon / self._dlon))
        best: _Report | None = None
        # Scan enough lon cells for the query latitude (cells are narrower in metres further north).
        nlon = math.ceil(
            self.distance_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 1e-6) * self._dlon)
        )
        for dy in (-1, 0, 1):
            for dx in range(-nlon, nlon + 1):
                for other in self._cells.get((key, cell[0] + dy, cell[1] + dx), {}).values():
                    if abs(other.ts - ts) > self.window_ms:
                        continue
                    if haversine_m(lat, lon, other.lat, other.lon) > self.distance_m:
                        continue
                    if best is None or (other.ts, other.case_id) < (best.ts, best.case_id):
                        best = other
        parent = None
        if best is not None:
            # The cluster's root while it is still held, else (closed or expired) the match itself.
            parent = best.parent if best.parent in self._by_id else best.case_id
        rec = _Report(case_id, key, ts, float(lat), float(lon), cell, parent)
        self._by_id[case_id] = rec
        self._cells.setdefault((key, *cell), {})[case_id] = rec
        heapq.heappush(self._expiry, (ts, case_id))
        self.touched.add(key)
        return parent

    def forget(self, case_id: str) -> None:
        """Stop matching against ``case_id`` (e.g. once it is closed or rejected)."""
        rec = self._by_id.pop(case_id, None)
        if rec is not None:
            self.touched.add(rec.key)
            bucket = self._cells[(rec.key, *rec.cell)]
            del bucket[case_id]
            if not bucket:
                del self._cells[(rec.key, *rec.cell)]

    def _expire(self, ts: int) -> None:
        if self._clock is None or ts > self._clock:
            self._clock = ts
        horizon = self._clock - self.window_ms
        while self._expiry and self._expiry[0][0] < horizon:
            old_ts, case_id = heapq.heappop(self._expiry)
            rec = self._by_id.get(case_id)
            if rec is not None and rec.ts == old_ts:
                self.forget(case_id)
