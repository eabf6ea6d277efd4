"""The shared-bike fleet: per-bike state in numpy arrays, advanced one time slice at a time.

Each bike alternates *parked* (locked; a heartbeat fix every ~5 min) and *riding* (unlocked; a fix
every ``gps_interval`` ± 2 s along a street-like path at 8–18 km/h). Every message is a fix: an unlock
fix starts a ride and a lock fix at the destination ends it. Parking outcomes, their ground truth and
operator clearing (a lognormal delay, median 20 min, after which the operator unlocks the bike and
moves it into the nearest fence) are described in :mod:`replay.simulate.rides` and
:mod:`replay.simulate.truth`. GPS noise is gaussian (per-bike σ 3–8 m per axis) with 3% multipath
outliers of 20–50 m; a few extra fault fixes (jumps of kilometres, far outside the area, 0/0) are
added a few seconds before real fixes. State is a fixed set of arrays, so memory does not grow with time.
"""

from __future__ import annotations

__all__ = ["Fleet", "BikeParams", "SliceFixes", "OPERATORS", "REGISTERED_OPERATORS", "dwell_mean_ms"]

from dataclasses import dataclass

import numpy as np

from replay.simulate.geography import FRA_ID, Geography
from replay.simulate.rides import (
    FENCE,
    NO_PARKING,
    OUTSIDE,
    ZOMBIE,
    Path3,
    path_position,
    plan_targets,
    staircase,
)
from replay.simulate.truth import TruthLog

#: Operators: three registered with the city (美团, 哈啰, 青桔) and one unregistered "black" one.
OPERATORS = ("meituan", "hellobike", "qingju", "heima")
REGISTERED_OPERATORS = OPERATORS[:3]
_PREFIX = ("MT", "HB", "QJ", "HM")
_SHARE = (0.45, 0.33, 0.21, 0.01)
_BLACK = 3
#: Outcome probabilities (fence, no_parking, outside_fence, zombie) for registered and black bikes.
_P_REGISTERED = np.cumsum([0.848, 0.05, 0.10, 0.002])
_P_BLACK = np.cumsum([0.50, 0.15, 0.35, 0.0])
_NEVER = np.iinfo(np.int64).max // 4
_DAY_MS = 86_400_000
_KIND = {NO_PARKING: "no_parking", OUTSIDE: "outside_fence"}


@dataclass(frozen=True)
class BikeParams:
    """Tunable rates of the fleet (times in ms)."""

    gps_interval_ms: int = 30_000
    heartbeat_ms: int = 300_000
    fault_p: float = 1e-4  # per heartbeat or riding fix
    initial_zombie_p: float = 0.005
    clear_median_ms: int = 20 * 60_000
    multipath_p: float = 0.03


@dataclass
class SliceFixes:
    """The fixes of one slice in event-time order: bike index, ts (ms), lon/lat (6 decimals), locked."""

    bike: np.ndarray
    ts: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    locked: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def dwell_mean_ms(t: np.ndarray) -> np.ndarray:
    """Mean parked time by Xiamen local hour: 1 h in rush hours, 8 h at night, else 2.5 h.

    Example
    -------
    >>> (dwell_mean_ms(np.array([0, 6 * 3_600_000])) / 3_600_000).tolist()  # 08:00 and 14:00 local
    [1.0, 2.5]
    """
    h = ((t + 8 * 3_600_000) % _DAY_MS) / 3_600_000
    rush = ((h >= 7) & (h < 9.5)) | ((h >= 17) & (h < 19.5))
    night = (h >= 23) | (h < 6)
    return np.where(rush, 3_600_000.0, np.where(night, 8 * 3_600_000.0, 2.5 * 3_600_000.0))


def _split(n: int) -> np.ndarray:
    """Bikes per operator by largest remainder; at least one black bike once the fleet has 20."""
    raw = np.array(_SHARE) * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    if n >= 20 and counts[_BLACK] == 0:
        counts[0] -= 1
        counts[_BLACK] = 1
    return counts


class Fleet:
    """``n`` bikes on ``geo``; :meth:`step` emits the fixes of ``[s0, s1)`` and records truth.

    Example
    -------
    >>> from replay.simulate.geography import build_geography
    >>> rng = np.random.default_rng(3)
    >>> fleet = Fleet(build_geography(rng, n_fences=60, n_zones=4), 40, rng, 0, TruthLog())
    >>> fixes = fleet.step(0, 600_000)
    >>> len(fixes) >= 40, bool((np.diff(fixes.ts) >= 0).all()), fleet.ids[0][:3] in ("MT-", "HB-", "QJ-", "HM-")
    (True, True, True)
    """

    def __init__(self, geo: Geography, n: int, rng: np.random.Generator, start_ms: int, truth: TruthLog,
                 params: BikeParams | None = None) -> None:
        self.geo, self.rng, self.truth = geo, rng, truth
        self.p = params or BikeParams()
        self.op = rng.permutation(np.repeat(np.arange(4, dtype=np.int8), _split(n)))
        seq = np.zeros(n, np.int64)
        for o in range(4):
            mine = np.flatnonzero(self.op == o)
            seq[mine] = np.arange(1, len(mine) + 1)
        #: bike ids (``MT-000001``) as a fixed-width string array: no per-bike Python objects
        self.ids = np.char.add(np.array([f"{p}-" for p in _PREFIX])[self.op], np.char.zfill(seq.astype(str), 6))
        self.sigma = rng.uniform(3.0, 8.0, n)
        fi = rng.integers(0, len(geo.fences), n)
        self.pos = np.stack(geo.fences.sample(fi, rng), axis=1)
        self.riding = np.zeros(n, bool)
        self.clear = np.zeros(n, bool)
        self.seen = self.op != _BLACK  # black bikes get a truth entry at their first fix
        self.viol = np.full(n, -1, np.int64)
        self.outcome = np.zeros(n, np.int8)
        self.zone = np.zeros(n, np.int64)
        self.c1, self.c2, self.dest = (np.zeros((n, 2)) for _ in range(3))
        self.l1, self.l2, self.total, self.speed = (np.zeros(n) for _ in range(4))
        self.t_start, self.t_end = np.zeros(n, np.int64), np.zeros(n, np.int64)
        dwell = rng.exponential(dwell_mean_ms(np.full(n, start_ms)))
        self.t_unlock = start_ms + 60_000 + dwell.astype(np.int64)
        zombie = (self.op != _BLACK) & (rng.random(n) < self.p.initial_zombie_p)
        self.t_unlock[zombie] = _NEVER
        since = rng.integers(_DAY_MS, 14 * _DAY_MS, n)
        for k in np.flatnonzero(zombie).tolist():
            self._open(k, "zombie", geo.fences.ids[fi[k]], start_ms - int(since[k]))
        self.t_next = np.minimum(start_ms + rng.integers(0, self.p.heartbeat_ms, n), self.t_unlock)

    def __len__(self) -> int:
        return len(self.op)

    def _open(self, k: int, kind: str, zone_id: str | None, ts: int) -> int:
        lon, lat = self.geo.proj.to_lonlat(self.pos[k, 0], self.pos[k, 1])
        grid = self.geo.admin.grid_index(lon, lat)
        return self.truth.add(
            "bike_violation", kind=kind, bike_id=str(self.ids[k]), operator=OPERATORS[self.op[k]],
            zone_id=zone_id, grid_id=self.geo.admin.grid_ids[int(grid)] if grid >= 0 else None,
            lat=round(float(lat), 7), lon=round(float(lon), 7), opened_ts=ts, closed_ts=None,
            closed_by=None)

    def _jitter(self, n: int, every: int, spread: int) -> np.ndarray:
        spread = min(spread, every // 4)  # intervals stay positive whatever ``gps_interval_ms``
        return every + self.rng.integers(-spread, spread + 1, n)

    def step(self, s0: int, s1: int) -> SliceFixes:
        """Advance every bike to ``s1`` (ms, exclusive); return the slice's fixes sorted by ts."""
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]] = []
        while True:
            i = np.flatnonzero(self.t_next < s1)
            if not len(i):
                break
            t = self.t_next[i]
            riding = self.riding[i]
            ending = riding & (t >= self.t_end[i])
            unlocking = ~riding & (t >= self.t_unlock[i])
            for sel, handler in ((~riding & ~unlocking, self._heartbeat), (riding & ~ending, self._ride_fix),
                                 (ending, self._lock), (unlocking, self._unlock)):
                if sel.any():
                    parts.append(handler(i[sel], t[sel]))
        return self._finish(parts, s0)

    def _heartbeat(self, i: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
        self.t_next[i] = np.minimum(t + self._jitter(len(i), self.p.heartbeat_ms, 30_000), self.t_unlock[i])
        return i, t, self.pos[i], True, True

    def _ride_fix(self, i: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
        xy = path_position(self._path(i), self.pos[i], (t - self.t_start[i]) * self.speed[i])
        self.t_next[i] = np.minimum(t + self._jitter(len(i), self.p.gps_interval_ms, 2_000), self.t_end[i])
        return i, t, xy, False, True

    def _path(self, i: np.ndarray) -> Path3:
        return Path3(self.c1[i], self.c2[i], self.dest[i], self.l1[i], self.l2[i], self.total[i])

    def _lock(self, i: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
        self.pos[i] = self.dest[i]
        self.riding[i] = False
        oc = self.outcome[i]
        dwell = 60_000 + self.rng.exponential(dwell_mean_ms(t)).astype(np.int64)  # at least a minute
        delay = np.maximum(self.rng.lognormal(np.log(self.p.clear_median_ms), 0.7, len(i)), 120_000)
        clear = np.isin(oc, (NO_PARKING, OUTSIDE)) & (self.op[i] != _BLACK) & (delay < dwell)
        self.clear[i] = clear
        self.t_unlock[i] = t + np.where(clear, delay.astype(np.int64), dwell)
        self.t_unlock[i[oc == ZOMBIE]] = _NEVER
        for k in np.flatnonzero(oc != FENCE).tolist():
            b, o = int(i[k]), int(oc[k])
            if o == ZOMBIE:
                self._open(b, "zombie", self.geo.fences.ids[self.zone[b]], int(t[k]))
            else:
                zid = self.geo.zones.ids[self.zone[b]] if o == NO_PARKING else FRA_ID
                self.viol[b] = self._open(b, _KIND[o], zid, int(t[k]))
        self.t_next[i] = np.minimum(t + self._jitter(len(i), self.p.heartbeat_ms, 30_000), self.t_unlock[i])
        return i, t, self.pos[i], True, False

    def _unlock(self, i: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
        clear = self.clear[i]
        for k in np.flatnonzero(self.viol[i] >= 0).tolist():
            e = self.truth.entries[self.viol[i[k]]]
            e["closed_ts"], e["closed_by"] = int(t[k]), "operator" if clear[k] else "user"
        self.viol[i] = -1
        o = self.pos[i]
        u = self.rng.random(len(i))
        drawn = np.where(self.op[i] == _BLACK, np.searchsorted(_P_BLACK, u, side="right"),
                         np.searchsorted(_P_REGISTERED, u, side="right")).clip(0, 3)
        dest, outcome, zone = plan_targets(self.rng, self.geo, o, drawn)
        c = np.flatnonzero(clear)  # the operator moves the bike into the nearest fence
        if len(c):
            zone[c] = self.geo.fences.nearest(o[c, 0], o[c, 1])[0]
            dest[c] = np.stack(self.geo.fences.sample(zone[c], self.rng), axis=1)
            outcome[c] = FENCE
        p = staircase(self.rng, o, dest)
        self.c1[i], self.c2[i], self.dest[i] = p.c1, p.c2, p.d
        self.l1[i], self.l2[i], self.total[i] = p.l1, p.l2, p.total
        self.outcome[i], self.zone[i] = outcome, zone
        self.speed[i] = self.rng.uniform(8.0, 18.0, len(i)) / 3600.0  # km/h → m/ms
        self.t_start[i] = t
        self.t_end[i] = t + np.maximum(np.ceil(p.total / self.speed[i]), 1_000).astype(np.int64)
        self.riding[i], self.clear[i] = True, False
        self.t_next[i] = np.minimum(t + self._jitter(len(i), self.p.gps_interval_ms, 2_000), self.t_end[i])
        return i, t, o.copy(), False, False

    def _finish(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]], s0: int) -> SliceFixes:
        if not parts:
            e = np.empty(0)
            return SliceFixes(e.astype(np.int64), e.astype(np.int64), e, e, e.astype(bool))
        idx = np.concatenate([p[0] for p in parts])
        ts = np.concatenate([p[1] for p in parts])
        xy = np.concatenate([p[2] for p in parts])
        locked = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
        may_fault = np.concatenate([np.full(len(p[0]), p[4]) for p in parts])
        n, rng = len(idx), self.rng
        xy = xy + rng.normal(0.0, 1.0, (n, 2)) * self.sigma[idx, None]
        mp = np.flatnonzero(rng.random(n) < self.p.multipath_p)
        ang = rng.uniform(0, 2 * np.pi, len(mp))
        xy[mp] += rng.uniform(20, 50, len(mp))[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        # a fault comes 1-10 s before a heartbeat or riding fix, inside this slice, and less than half the
        # shortest fix interval before it: strictly between that fix and the bike's previous one, so both
        # neighbours share its lock state
        gap = self.p.gps_interval_ms - min(2_000, self.p.gps_interval_ms // 4)
        hi = min(10_000, gap // 2)
        lo = min(1_000, hi // 2)
        room = np.minimum(ts - s0, hi)
        f = np.flatnonzero(may_fault & (rng.random(n) < self.p.fault_p) & (room > lo))
        fts = ts[f] - lo - (rng.random(len(f)) * (room[f] - lo)).astype(np.int64)
        kind = rng.choice(3, len(f), p=[0.6, 0.25, 0.15])  # jump, outside_area, null_island
        ang = rng.uniform(0, 2 * np.pi, len(f))
        far = np.where(kind == 0, rng.uniform(3_000, 15_000, len(f)), rng.uniform(30_000, 80_000, len(f)))
        fxy = xy[f] + far[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        idx, ts = np.concatenate([idx, idx[f]]), np.concatenate([ts, fts])
        locked = np.concatenate([locked, locked[f]])
        lon, lat = self.geo.proj.to_lonlat(*np.concatenate([xy, fxy]).T)
        lon, lat = lon.round(6), lat.round(6)
        nul = n + np.flatnonzero(kind == 2)
        lon[nul], lat[nul] = 0.0, 0.0
        for k in range(len(f)):
            j = n + k
            self.truth.add("gps_fault", fault=("jump", "outside_area", "null_island")[kind[k]],
                           bike_id=str(self.ids[idx[j]]), operator=OPERATORS[self.op[idx[j]]], ts=int(ts[j]),
                           lat=float(lat[j]), lon=float(lon[j]))
        order = np.argsort(ts, kind="stable")
        out = SliceFixes(idx[order], ts[order], lon[order], lat[order], locked[order])
        self._first_seen(out)
        return out

    def _first_seen(self, fx: SliceFixes) -> None:
        new = np.flatnonzero(~self.seen[fx.bike])
        if not len(new):
            return
        bikes, first = np.unique(fx.bike[new], return_index=True)
        for b, j in zip(bikes.tolist(), new[first].tolist(), strict=True):
            self.seen[b] = True
            grid = int(self.geo.admin.grid_index(fx.lon[j], fx.lat[j]))
            self.truth.add("bike_violation", kind="black_bike", bike_id=str(self.ids[b]), operator=OPERATORS[_BLACK],
                           zone_id=None, grid_id=self.geo.admin.grid_ids[grid] if grid >= 0 else None,
                           lat=float(fx.lat[j]), lon=float(fx.lon[j]), opened_ts=int(fx.ts[j]),
                           closed_ts=None, closed_by=None)
