"""Per-bike rule transitions: one applied fix, or event time passing, for one bike's state row.

The state row travels as a plain list (``BikeStates.data[r].tolist()``) indexed by the ``_F``
constants below; :class:`~models.bikes.supervisor.BikeSupervisor` loads it, calls :meth:`BikeRules.step`
for each of the bike's fixes in time order, and stores it back. Only bikes with something happening
take this path; quiet fixes are applied vectorized by the supervisor.

Conventions (documented once, here):

- ``no_parking`` / ``outside_fence`` open at the **lock time** (``opened_ts`` = lock ts, as the ground
  truth counts them) and are reported once ``grace_ms`` has elapsed in event time (``ts`` = lock +
  grace); a bike unlocked or moved within the grace yields nothing.
- ``zombie`` opens when the bike has been locked, unmoved, for ``zombie_after_ms``; ``opened_ts`` is
  that moment (lock + zombie age), so ``time_to_clear_s`` measures the operator's reaction.
- ``black_bike`` opens at the first fix of each local day of an unregistered operator's bike and
  closes at the end of that day (reason ``day_end``).
- A parked bike inside a fence (within tolerance) is never in ``no_parking``; a fence wins.
"""

from __future__ import annotations

__all__ = ["BikeRules", "FIELD"]

import math

import numpy as np

from models.bikes.config import SupervisionConfig
from models.bikes.events import (
    Event,
    FirstActive,
    GpsFault,
    OccupancyDelta,
    Violation,
    closed,
    opened,
)
from models.bikes.state import (
    F_BLACK,
    F_NO_PARKING,
    F_OUTSIDE_FENCE,
    F_OUTSIDE_SERVICE,
    F_ZOMBIE,
    NEVER,
    PLACE_FENCE,
    PLACE_FREE,
    PLACE_NO_PARKING,
    PLACE_OUTSIDE_FENCE,
    STATE_DTYPE,
    UNSEEN,
    BikeStates,
)
from models.geo.index import NO_ZONE, ZoneIndex

#: Position of each state field in a row list.
FIELD = {name: i for i, name in enumerate(STATE_DTYPE.names or ())}
_LAST_TS, _LAST_LON, _LAST_LAT = FIELD["last_ts"], FIELD["last_lon"], FIELD["last_lat"]
_PARKED, _ALON, _ALAT, _DUE = FIELD["parked_since"], FIELD["anchor_lon"], FIELD["anchor_lat"], FIELD["next_due"]
_DAY_FIRST, _ZONE, _FDIST, _DAY = FIELD["day_first_ts"], FIELD["zone"], FIELD["fence_dist"], FIELD["day"]
_OP, _LOCKED, _PLACE, _FLAGS = FIELD["operator"], FIELD["locked"], FIELD["place"], FIELD["flags"]

_PARK_KIND = {
    PLACE_NO_PARKING: ("no_parking", F_NO_PARKING),
    PLACE_OUTSIDE_FENCE: ("outside_fence", F_OUTSIDE_FENCE),
}
_PARK_FLAGS = ((F_NO_PARKING, "no_parking"), (F_OUTSIDE_FENCE, "outside_fence"), (F_ZOMBIE, "zombie"))
Place = tuple[int, int, float]  # (place code, zone index, metres to nearest fence)


class BikeRules:
    """Rule transitions on state rows. Not used directly: see ``BikeSupervisor``."""

    def __init__(self, config: SupervisionConfig, index: ZoneIndex, states: BikeStates,
                 stats: dict[str, int]) -> None:
        self.config = config
        self.index = index
        self.states = states
        self.stats = stats
        self.kx, self.ky = index.projection.kx, index.projection.ky
        self._black: list[bool] = []

    def is_black(self, op_code: int) -> bool:
        ops, reg = self.states.operators, self.config.registered_operators
        while len(self._black) < len(ops):
            self._black.append(reg is not None and ops[len(self._black)] not in reg)
        return self._black[op_code]

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorized parking place of points: (place code, zone index, metres to nearest fence)."""
        cfg, idx = self.config, self.index
        fence, dist = idx.lookup(lon, lat, "parking_fence", cfg.fence_tolerance_m, cfg.search_radius_m)
        place = np.where(fence != NO_ZONE, PLACE_FENCE, PLACE_FREE).astype(np.int8)
        zone = fence.copy()
        for kind, code in (("no_parking", PLACE_NO_PARKING), ("fence_required_area", PLACE_OUTSIDE_FENCE)):
            if idx.has(kind):
                free = place == PLACE_FREE
                inside = idx.contains(lon[free], lat[free], kind)
                hit = np.flatnonzero(free)[inside != NO_ZONE]
                place[hit], zone[hit] = code, inside[inside != NO_ZONE]
        return place, zone, dist

    # -- one fix ---------------------------------------------------------------------------------
    def step(self, r: int, s: list, t: int, lon: float, lat: float, locked: bool, day: int,
             where: Place | None, outside_service: bool, out: list[Event]) -> None:
        """Apply one fix (newer than the bike's last) to state row ``s`` of row ``r``."""
        cfg = self.config
        if s[_DUE] <= t:
            self.fire(r, s, t, out)
        if day != s[_DAY]:
            s[_DAY], s[_DAY_FIRST] = day, t
            out.append(FirstActive(self.states.operators[s[_OP]], self.states.ids[r], day, t))
            if self.is_black(s[_OP]) and not s[_FLAGS] & F_BLACK:
                s[_FLAGS] |= F_BLACK
                out.append(self._violation("black_bike", r, s))
                self._schedule(s)
        if s[_LAST_TS] != UNSEEN:
            d = math.hypot((lon - s[_LAST_LON]) * self.kx, (lat - s[_LAST_LAT]) * self.ky)
            dt_s = (t - s[_LAST_TS]) / 1000
            if d > cfg.jump_min_m and d > cfg.max_speed_kmh / 3.6 * dt_s:
                self.stats["impossible_jump"] += 1
                kmh = round(d / dt_s * 3.6, 1) if dt_s > 0 else None
                out.append(GpsFault("impossible_jump", self.states.ids[r], self.states.operators[s[_OP]],
                                    t, lon, lat, kmh, round(d, 1)))
                if cfg.drop_jumps:
                    self.stats["dropped"] += 1
                    return
        if outside_service != bool(s[_FLAGS] & F_OUTSIDE_SERVICE):
            s[_FLAGS] ^= F_OUTSIDE_SERVICE
            if outside_service:
                out.append(GpsFault("outside_service_area", self.states.ids[r],
                                    self.states.operators[s[_OP]], t, lon, lat))
        if locked:
            if s[_LOCKED] != 1:
                self._park(r, s, t, lon, lat, where, out)
            elif math.hypot((lon - s[_ALON]) * self.kx, (lat - s[_ALAT]) * self.ky) > cfg.move_threshold_m:
                self._unpark(r, s, t, "moved", out)
                self._park(r, s, t, lon, lat, where, out)
        elif s[_LOCKED] != 0:
            if s[_LOCKED] == 1:
                self._unpark(r, s, t, "unlocked", out)
            s[_LOCKED] = 0
        s[_LAST_TS], s[_LAST_LON], s[_LAST_LAT] = t, lon, lat

    def _park(self, r: int, s: list, t: int, lon: float, lat: float, where: Place | None,
              out: list[Event]) -> None:
        if where is None:  # not precomputed for the batch (the bike moved twice in it): look up alone
            p, z, d = self.locate(np.array([lon]), np.array([lat]))
            where = (int(p[0]), int(z[0]), float(d[0]))
        s[_LOCKED], s[_PARKED], s[_ALON], s[_ALAT] = 1, t, lon, lat
        s[_PLACE], s[_ZONE], s[_FDIST] = where
        if s[_PLACE] == PLACE_FENCE:
            out.append(OccupancyDelta(self.index.zones[s[_ZONE]].zone_id, self.states.ids[r], t, 1))
        self._schedule(s)
        if s[_DUE] <= t:  # zero grace
            self.fire(r, s, t, out)

    def _unpark(self, r: int, s: list, t: int, reason: str, out: list[Event]) -> None:
        for flag, kind in _PARK_FLAGS:
            if s[_FLAGS] & flag:
                out.append(closed(self._violation(kind, r, s), t, reason))
                s[_FLAGS] &= ~flag
        if s[_PLACE] == PLACE_FENCE:
            out.append(OccupancyDelta(self.index.zones[s[_ZONE]].zone_id, self.states.ids[r], t, -1))
        s[_LOCKED], s[_PARKED], s[_PLACE], s[_ZONE], s[_FDIST] = 0, UNSEEN, PLACE_FREE, NO_ZONE, math.inf
        self._schedule(s)

    # -- event time passing ------------------------------------------------------------------------
    def _due_list(self, s: list) -> list[tuple[int, str]]:
        cfg, due, flags = self.config, [], s[_FLAGS]
        if s[_PARKED] != UNSEEN:
            park = _PARK_KIND.get(s[_PLACE])
            if park is not None and not flags & park[1]:
                due.append((s[_PARKED] + cfg.grace_ms, park[0]))
            if not flags & F_ZOMBIE:
                due.append((s[_PARKED] + cfg.zombie_after_ms, "zombie"))
        if flags & F_BLACK:
            due.append((cfg.day_end_ms(s[_DAY]), "black_bike"))
        return due

    def _schedule(self, s: list) -> None:
        """Set ``next_due`` to the earliest pending timer (same rules as :meth:`_due_list`)."""
        cfg, flags, due = self.config, s[_FLAGS], NEVER
        if s[_PARKED] != UNSEEN:
            park = _PARK_KIND.get(s[_PLACE])
            if park is not None and not flags & park[1]:
                due = s[_PARKED] + cfg.grace_ms
            if not flags & F_ZOMBIE:
                due = min(due, s[_PARKED] + cfg.zombie_after_ms)
        if flags & F_BLACK:
            due = min(due, cfg.day_end_ms(s[_DAY]))
        s[_DUE] = due

    def fire(self, r: int, s: list, now: int, out: list[Event]) -> None:
        """Emit what became due at or before ``now`` for this bike."""
        for due, kind in sorted(self._due_list(s)):
            if due > now:
                break
            if kind == "black_bike":
                out.append(closed(self._violation(kind, r, s), due, "day_end"))
                s[_FLAGS] &= ~F_BLACK
            else:
                out.append(self._violation(kind, r, s))
                s[_FLAGS] |= F_ZOMBIE if kind == "zombie" else _PARK_KIND[s[_PLACE]][1]
        self._schedule(s)

    def _violation(self, kind: str, r: int, s: list) -> Violation:
        """The open event of a bike violation, rebuilt from state (so its close matches it)."""
        bike, op = self.states.ids[r], self.states.operators[s[_OP]]
        if kind == "black_bike":
            return opened(kind, bike, s[_DAY_FIRST], s[_DAY_FIRST], op)
        zone = self.index.zones[s[_ZONE]].zone_id if s[_ZONE] != NO_ZONE else None
        dist = round(float(s[_FDIST]), 2) if math.isfinite(s[_FDIST]) else None
        start = s[_PARKED] + (self.config.zombie_after_ms if kind == "zombie" else 0)
        report = start if kind == "zombie" else start + self.config.grace_ms
        return opened(kind, bike, report, start, op, zone, s[_ALON], s[_ALAT], dist)
