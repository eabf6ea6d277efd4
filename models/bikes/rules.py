"""Per-bike rule transitions: one applied fix, or event time passing, for one bike's state row.

The state row travels as a plain list (``BikeStates.data[r].tolist()``) indexed by the ``_F``
constants below; :class:`~models.bikes.supervisor.BikeSupervisor` loads it, calls :meth:`BikeRules.step`
for each of the bike's fixes in time order, and stores it back. Only bikes with something happening
take this path; quiet fixes are applied vectorized by the supervisor.

Conventions (documented once, here):

- A parked bike's *place* is the zone its position votes for: the nearest fence within tolerance,
  else the nearest no-parking zone within tolerance, else the fence-required area it is in, else
  nowhere. Without ``confirm_parking`` the lock fix decides. With it, the position is the midpoint of
  two consecutive *samples* (locked fixes, or the fix of its unlock) within ``confirm_radius_m`` of
  each other; a sample that disagrees with the one before replaces it, so one stray fix neither
  decides nor moves anything. Fences are protected from stray fixes: if either sample of the pair
  lies in a fence the bike is in it, and a bike any sample of which lay in a fence is never
  ``outside_fence``. A parking whose samples never agree (it was unlocked, or ``confirm_wait_ms``
  passed after the grace) takes its newest sample's place, unless some sample lay in a fence.
- ``no_parking`` / ``outside_fence`` open at the **lock time** (``opened_ts`` = lock ts, as the ground
  truth counts them) and are reported once ``grace_ms`` has elapsed in event time and the place is
  decided (``ts`` = the later of the two); a bike unlocked or moved within the grace yields nothing.
- ``zombie`` opens when the bike has been locked, unmoved, for ``zombie_after_ms``; ``opened_ts`` is
  that moment (lock + zombie age), so ``time_to_clear_s`` measures the operator's reaction.
- ``black_bike`` opens at the first fix of each local day of an unregistered operator's bike and
  closes at the end of that day (reason ``day_end``).
- Two impossible jumps in a row mean the position jumped *from* was the glitch: the second is applied.
"""

from __future__ import annotations

__all__ = ["BikeRules", "FIELD"]

import math

from models.bikes.config import SupervisionConfig
from models.bikes.events import (
    Event,
    FirstActive,
    GpsFault,
    OccupancyDelta,
    Parked,
    Violation,
    closed,
    opened,
)
from models.bikes.placing import MidPlace, Place, Placer
from models.bikes.state import (
    F_BLACK,
    F_DROPPED,
    F_NO_PARKING,
    F_OUTSIDE_FENCE,
    F_OUTSIDE_SERVICE,
    F_PENDING,
    F_SAW_FENCE,
    F_ZOMBIE,
    FIELD,
    NEVER,
    PLACE_FENCE,
    PLACE_FREE,
    PLACE_NO_PARKING,
    PLACE_OUTSIDE_FENCE,
    UNSEEN,
    BikeStates,
)
from models.geo.index import NO_ZONE, ZoneIndex

_LAST_TS, _LAST_LON, _LAST_LAT = FIELD["last_ts"], FIELD["last_lon"], FIELD["last_lat"]
_PARKED, _ALON, _ALAT, _DUE = FIELD["parked_since"], FIELD["anchor_lon"], FIELD["anchor_lat"], FIELD["next_due"]
_DAY_FIRST, _ZONE, _FDIST, _DAY = FIELD["day_first_ts"], FIELD["zone"], FIELD["fence_dist"], FIELD["day"]
_OP, _LOCKED, _PLACE, _FLAGS = FIELD["operator"], FIELD["locked"], FIELD["place"], FIELD["flags"]
_LAG = FIELD["report_lag_ms"]

_PARK_KIND = {
    PLACE_NO_PARKING: ("no_parking", F_NO_PARKING),
    PLACE_OUTSIDE_FENCE: ("outside_fence", F_OUTSIDE_FENCE),
}
_PARK_FLAGS = ((F_NO_PARKING, "no_parking"), (F_OUTSIDE_FENCE, "outside_fence"), (F_ZOMBIE, "zombie"))
_PLACE_NAME = ("free", "parking_fence", "no_parking", "outside_fence")


def _net_out_move(out: list[Event], mark: int) -> None:
    """A move that ends a parking and starts the next in the same counted zone at one instant changes no count: drop
    its -1 and +1 (from ``out[mark:]``). Sent on, the keyed stage would take the -1 first (a departure comes before
    an arrival of the same instant) and then the +1 for a re-delivery of the parking that just ended."""
    at = [i for i in range(mark, len(out)) if isinstance(out[i], OccupancyDelta)]
    if len(at) == 2:
        gone, back = out[at[0]], out[at[1]]
        if (isinstance(gone, OccupancyDelta) and isinstance(back, OccupancyDelta) and gone.delta < 0 < back.delta
                and gone.zone_id == back.zone_id):
            del out[at[1]], out[at[0]]


class BikeRules:
    """Rule transitions on state rows. Not used directly: see ``BikeSupervisor``."""

    def __init__(self, config: SupervisionConfig, index: ZoneIndex, states: BikeStates,
                 stats: dict[str, int]) -> None:
        self.config = config
        self.index = index
        self.states = states
        self.stats = stats
        self.placer = Placer(config, index)
        self._black: list[bool] = []

    def is_black(self, op_code: int) -> bool:
        ops, reg, unknown = self.states.operators, self.config.registered_operators, self.config.unattributed_operator
        while len(self._black) < len(ops):
            op = ops[len(self._black)]
            self._black.append(reg is not None and op not in reg and op != unknown)
        return self._black[op_code]

    # -- one fix ---------------------------------------------------------------------------------
    def step(self, r: int, s: list, t: int, lon: float, lat: float, locked: bool, day: int,
             where: Place | None, outside_service: bool, out: list[Event], mid: MidPlace | None = None) -> None:
        """Apply one fix (newer than the bike's last) to state row ``s`` of row ``r``; ``where`` and
        ``mid`` are the precomputed places of the fix and of its midpoint with the previous fix."""
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
            d = self.placer.metres(lon, lat, s[_LAST_LON], s[_LAST_LAT])
            dt_s = (t - s[_LAST_TS]) / 1000
            if d <= cfg.jump_min_m or d <= cfg.max_speed_kmh / 3.6 * dt_s:
                s[_FLAGS] &= ~F_DROPPED
            elif s[_FLAGS] & F_DROPPED:  # a second jump in a row: the last applied fix was the glitch
                s[_FLAGS] &= ~F_DROPPED
                self.stats["reanchored"] += 1
            else:
                self.stats["impossible_jump"] += 1
                kmh = round(d / dt_s * 3.6, 1) if dt_s > 0 else None
                out.append(GpsFault("impossible_jump", self.states.ids[r], self.states.operators[s[_OP]],
                                    t, lon, lat, kmh, round(d, 1)))
                if cfg.drop_jumps:
                    self.stats["dropped"] += 1
                    s[_FLAGS] |= F_DROPPED
                    return
        if outside_service != bool(s[_FLAGS] & F_OUTSIDE_SERVICE):
            s[_FLAGS] ^= F_OUTSIDE_SERVICE
            if outside_service:
                out.append(GpsFault("outside_service_area", self.states.ids[r],
                                    self.states.operators[s[_OP]], t, lon, lat))
        if locked:
            if s[_LOCKED] != 1:
                self._park(r, s, t, lon, lat, where, out)
            else:
                self._sample(r, s, t, lon, lat, where, mid, out)
        elif s[_LOCKED] != 0:
            if s[_LOCKED] == 1:
                if s[_FLAGS] & F_PENDING:  # the unlock fix is the last sample of the parking place
                    if self.placer.metres(lon, lat, s[_ALON], s[_ALAT]) <= cfg.confirm_radius_m:
                        self.placer.confirm(s, lon, lat, where, mid)
                    else:
                        if (self.placer.locate1(lon, lat) if where is None else where)[0] == PLACE_FENCE:
                            s[_FLAGS] |= F_SAW_FENCE
                        self.placer.undecided(s)
                    if s[_PLACE] in _PARK_KIND:
                        self._decide(r, s, t, out)
                    else:  # no violation to report: the place no longer matters
                        s[_FLAGS] &= ~F_PENDING
                        s[_PLACE] = PLACE_FREE
                self._unpark(r, s, t, "unlocked", out)
            s[_LOCKED] = 0
        s[_LAST_TS], s[_LAST_LON], s[_LAST_LAT] = t, lon, lat

    def _park(self, r: int, s: list, t: int, lon: float, lat: float, where: Place | None,
              out: list[Event]) -> None:
        if where is None:  # not precomputed for the batch (the bike moved twice in it): look up alone
            where = self.placer.locate1(lon, lat)
        s[_LOCKED], s[_PARKED], s[_ALON], s[_ALAT] = 1, t, lon, lat
        s[_PLACE], s[_ZONE], s[_FDIST] = where
        if self.config.confirm_parking:
            s[_FLAGS] |= F_PENDING | (F_SAW_FENCE if where[0] == PLACE_FENCE else 0)
            self._schedule(s)
        else:
            self._decide(r, s, t, out)

    def _sample(self, r: int, s: list, t: int, lon: float, lat: float, where: Place | None,
                mid: MidPlace | None, out: list[Event]) -> None:
        """A locked fix of a parked bike: confirm its place, or notice it was moved."""
        cfg = self.config
        da = self.placer.metres(lon, lat, s[_ALON], s[_ALAT])
        if s[_FLAGS] & F_PENDING:
            if da <= cfg.confirm_radius_m:
                self.placer.confirm(s, lon, lat, where, mid)
                self._decide(r, s, t, out)
            else:  # disagrees: this newest sample becomes the anchor
                s[_ALON], s[_ALAT] = lon, lat
                s[_PLACE], s[_ZONE], s[_FDIST] = self.placer.locate1(lon, lat) if where is None else where
                if s[_PLACE] == PLACE_FENCE:
                    s[_FLAGS] |= F_SAW_FENCE
            return
        if da <= cfg.move_threshold_m:
            return
        if not cfg.confirm_parking:
            mark = len(out)
            self._unpark(r, s, t, "moved", out)
            self._park(r, s, t, lon, lat, where, out)
            _net_out_move(out, mark)
        elif (self.placer.metres(s[_LAST_LON], s[_LAST_LAT], s[_ALON], s[_ALAT]) > cfg.move_threshold_m
              and self.placer.metres(lon, lat, s[_LAST_LON], s[_LAST_LAT]) <= cfg.confirm_radius_m):
            # Two samples in a row far from where it parked, agreeing: moved when the first was sent.
            t0, lon0, lat0 = s[_LAST_TS], s[_LAST_LON], s[_LAST_LAT]
            self._unpark(r, s, t0, "moved", out)
            self._park(r, s, t0, lon0, lat0, None, out)
            self._sample(r, s, t, lon, lat, where, mid, out)

    def _decide(self, r: int, s: list, t: int, out: list[Event]) -> None:
        """The place is settled at ``t``: occupancy, then whatever is already due (reported at ``t``)."""
        self._settle(r, s, t, out)
        self._schedule(s)
        if s[_DUE] <= t:
            self.fire(r, s, t, out, floor=t)

    def _counted(self, s: list) -> bool:
        """Whether the bike's place is in the occupancy counts (always a fence; others on demand)."""
        return s[_ZONE] != NO_ZONE and (s[_PLACE] == PLACE_FENCE or (
            self.config.occupancy_all_zones and s[_PLACE] != PLACE_FREE))

    def _settle(self, r: int, s: list, t: int, out: list[Event]) -> None:
        s[_FLAGS] &= ~(F_PENDING | F_SAW_FENCE)
        if self._counted(s):
            out.append(OccupancyDelta(self.index.zones[s[_ZONE]].zone_id, self.states.ids[r], t, 1))
        if self.config.report_parkings:
            zone = self.index.zones[s[_ZONE]].zone_id if s[_ZONE] != NO_ZONE else None
            dist = round(float(s[_FDIST]), 2) if math.isfinite(s[_FDIST]) else None
            out.append(Parked(self.states.ids[r], self.states.operators[s[_OP]], s[_PARKED], t,
                              _PLACE_NAME[s[_PLACE]], zone, s[_ALON], s[_ALAT], dist))

    def _unpark(self, r: int, s: list, t: int, reason: str, out: list[Event]) -> None:
        for flag, kind in _PARK_FLAGS:
            if s[_FLAGS] & flag:
                out.append(closed(self._violation(kind, r, s), t, reason))
                s[_FLAGS] &= ~flag
        if not s[_FLAGS] & F_PENDING and self._counted(s):
            out.append(OccupancyDelta(self.index.zones[s[_ZONE]].zone_id, self.states.ids[r], t, -1))
        s[_LOCKED], s[_PARKED], s[_PLACE], s[_ZONE], s[_FDIST] = 0, UNSEEN, PLACE_FREE, NO_ZONE, math.inf
        s[_FLAGS] &= ~(F_PENDING | F_SAW_FENCE)
        self._schedule(s)

    # -- event time passing ------------------------------------------------------------------------
    def _due_list(self, s: list) -> list[tuple[int, str]]:
        cfg, due, flags = self.config, [], s[_FLAGS]
        if s[_PARKED] != UNSEEN:
            if flags & F_PENDING:
                due.append((s[_PARKED] + cfg.grace_ms + cfg.confirm_wait_ms, "confirm"))
            else:
                park = _PARK_KIND.get(s[_PLACE])
                if park is not None and not flags & park[1]:
                    due.append((s[_PARKED] + cfg.grace_ms, park[0]))
            if not flags & F_ZOMBIE:
                due.append((s[_PARKED] + cfg.zombie_after_ms, "zombie"))
        if flags & F_BLACK:
            due.append((cfg.day_end_ms(s[_DAY]), "black_bike"))
        return due

    def _schedule(self, s: list) -> None:
        """Set ``next_due`` to the earliest pending timer (see :meth:`_due_list`)."""
        due = self._due_list(s)
        s[_DUE] = min(due)[0] if due else NEVER

    def fire(self, r: int, s: list, now: int, out: list[Event], floor: int = UNSEEN) -> None:
        """Emit what became due at or before ``now`` for this bike, earliest first. A parking
        violation is reported no earlier than ``floor`` (when its place was decided)."""
        while True:
            due = [d for d in self._due_list(s) if d[0] <= now]
            if not due:
                break
            at, kind = min(due)
            if kind == "black_bike":
                out.append(closed(self._violation(kind, r, s), at, "day_end"))
                s[_FLAGS] &= ~F_BLACK
            elif kind == "confirm":  # no confirming sample came: decide on what the bike sent
                self.placer.undecided(s)
                self._settle(r, s, at, out)
                floor = max(floor, at)
            elif kind == "zombie":
                out.append(self._violation(kind, r, s))
                s[_FLAGS] |= F_ZOMBIE
            else:
                s[_LAG] = max(at, floor) - s[_PARKED]
                out.append(self._violation(kind, r, s))
                s[_FLAGS] |= _PARK_KIND[s[_PLACE]][1]
        self._schedule(s)

    def _violation(self, kind: str, r: int, s: list) -> Violation:
        """The open event of a bike violation, rebuilt from state (so its close matches it)."""
        bike, op = self.states.ids[r], self.states.operators[s[_OP]]
        if kind == "black_bike":
            return opened(kind, bike, s[_DAY_FIRST], s[_DAY_FIRST], op)
        zone = self.index.zones[s[_ZONE]].zone_id if s[_ZONE] != NO_ZONE else None
        dist = round(float(s[_FDIST]), 2) if math.isfinite(s[_FDIST]) else None
        start = s[_PARKED] + (self.config.zombie_after_ms if kind == "zombie" else 0)
        report = start if kind == "zombie" else start + s[_LAG]
        return opened(kind, bike, report, start, op, zone, s[_ALON], s[_ALAT], dist)
