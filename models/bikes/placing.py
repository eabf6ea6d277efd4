"""Where a parked bike stands: the zone each position votes for, and the place of a parking decided from
its position samples (the conventions are documented in :mod:`models.bikes.rules`).

A position votes for the nearest fence within ``fence_tolerance_m``, else the nearest no-parking zone within
``no_parking_tolerance_m`` (a fence nearer than it wins), else the fence-required area it lies in, else nowhere.
"""

from __future__ import annotations

__all__ = ["Placer", "Place", "MidPlace"]

import math

import numpy as np

from models.bikes.config import SupervisionConfig
from models.bikes.state import (
    F_SAW_FENCE,
    FIELD,
    PLACE_FENCE,
    PLACE_FREE,
    PLACE_NO_PARKING,
    PLACE_OUTSIDE_FENCE,
)
from models.geo.index import NO_ZONE, ZoneIndex

Place = tuple[int, int, float]  # (place code, zone index, metres to nearest fence)
#: The place of the midpoint between a fix and the bike's previous applied position ``(lon, lat)``,
#: precomputed per batch: ``(place, zone, metres, previous lon, previous lat)``.
MidPlace = tuple[int, int, float, float, float]
_ALON, _ALAT, _ZONE, _FDIST = FIELD["anchor_lon"], FIELD["anchor_lat"], FIELD["zone"], FIELD["fence_dist"]
_PLACE, _FLAGS = FIELD["place"], FIELD["flags"]


class Placer:
    """Votes of positions for their zone, and the place of a parking from two agreeing samples.

    Example
    -------
    >>> import shapely
    >>> from models.geo import Zone
    >>> fence = Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.10006, 24.50002))
    >>> placer = Placer(SupervisionConfig(fence_tolerance_m=10.0), ZoneIndex([fence]))
    >>> place, zone, metres = placer.locate1(118.10003, 24.50008)  # ~6.6 m north of the fence
    >>> place, zone, round(metres, 1)
    (1, 0, 6.6)
    >>> placer.locate1(118.10003, 24.5003)[0], round(placer.metres(118.1, 24.5, 118.1001, 24.5), 1)
    (0, 10.1)
    """

    def __init__(self, config: SupervisionConfig, index: ZoneIndex) -> None:
        self.config = config
        self.index = index
        self.kx, self.ky = index.projection.kx, index.projection.ky

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorized vote of points: (place code, zone index, metres to nearest fence)."""
        cfg, idx = self.config, self.index
        pts = idx.points(lon, lat)  # once for both lookups
        fence, dist = idx.lookup(lon, lat, "parking_fence", cfg.fence_tolerance_m, cfg.search_radius_m, pts=pts)
        place = np.where(fence != NO_ZONE, PLACE_FENCE, PLACE_FREE).astype(np.int8)
        zone = fence.copy()
        if idx.has("no_parking"):
            if cfg.no_parking_tolerance_m > 0:
                npz, nd = idx.lookup(lon, lat, "no_parking", cfg.no_parking_tolerance_m, 0.0, pts=pts)
            else:
                npz = idx.contains(lon, lat, "no_parking")
                nd = np.where(npz != NO_ZONE, 0.0, np.inf)
            nearer = np.flatnonzero((npz != NO_ZONE) & ((fence == NO_ZONE) | (nd < dist)))
            place[nearer], zone[nearer] = PLACE_NO_PARKING, npz[nearer]
        if idx.has("fence_required_area"):
            free = np.flatnonzero(place == PLACE_FREE)
            inside = idx.contains(lon[free], lat[free], "fence_required_area")
            hit = free[inside != NO_ZONE]
            place[hit], zone[hit] = PLACE_OUTSIDE_FENCE, inside[inside != NO_ZONE]
        return place, zone, dist

    def locate1(self, lon: float, lat: float) -> Place:
        """The vote of one position (a lookup of its own: prefer :meth:`locate` on a batch)."""
        p, z, d = self.locate(np.array([lon]), np.array([lat]))
        return int(p[0]), int(z[0]), float(d[0])

    def metres(self, lon: float, lat: float, lon2: float, lat2: float) -> float:
        """Metres between two positions (the index's local projection)."""
        return math.hypot((lon - lon2) * self.kx, (lat - lat2) * self.ky)

    def confirm(self, s: list, lon: float, lat: float, where: Place | None, mid: MidPlace | None) -> None:
        """The sample at (lon, lat) agrees with state row ``s``'s anchor: the place is that of their midpoint,
        unless a sample lay in a fence (``where``: the sample's precomputed vote, ``mid``: the midpoint's)."""
        mlon, mlat = (s[_ALON] + lon) / 2, (s[_ALAT] + lat) / 2
        if mid is not None and mid[3] == s[_ALON] and mid[4] == s[_ALAT]:
            at: Place = (mid[0], mid[1], mid[2])
        else:  # the anchor is not the fix the batch saw before this one (a dropped jump between)
            at = self.locate1(mlon, mlat)
        if at[0] != PLACE_FENCE:
            # Either sample of the pair in a fence: the bike is in that fence (an agreeing stray fix
            # must not take a fenced bike out). Any earlier sample in a fence: not outside any.
            if where is None:
                where = self.locate1(lon, lat)
            for cand in ((s[_PLACE], s[_ZONE], s[_FDIST]), where):
                if cand[0] == PLACE_FENCE:
                    at = (cand[0], cand[1], at[2])
            if at[0] == PLACE_OUTSIDE_FENCE and s[_FLAGS] & F_SAW_FENCE:
                at = (PLACE_FREE, NO_ZONE, at[2])
        s[_ALON], s[_ALAT] = mlon, mlat
        s[_PLACE], s[_ZONE], s[_FDIST] = at

    def undecided(self, s: list) -> None:
        """No two samples agreed: a fence any sample lay in wins, else the newest sample's place."""
        if s[_FLAGS] & F_SAW_FENCE and s[_PLACE] != PLACE_FENCE:
            s[_PLACE], s[_ZONE] = PLACE_FREE, NO_ZONE  # in some fence, not known which: no count
