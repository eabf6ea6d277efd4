"""Shared-bike supervision over batches of fixes: violations, GPS faults and partial counts.

Event time only. Fixes are held back until the watermark passes them (``allowed_lateness_ms`` behind
the newest fix seen, or a later ``advance_to``) and then applied in per-bike time order, so any
disorder within the lateness yields exactly the events of the ordered feed, and a replayed fix
(same bike and ``ts``) is a counted no-op. Zone lookups run once per batch, vectorized; only bikes
where something happens (lock change, move, new day, fault, due timer) take the per-bike Python path.
"""

from __future__ import annotations

__all__ = ["BikeSupervisor", "FixColumns", "STAT_NAMES"]

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import orjson
from numpy.typing import NDArray

from models.bikes.checkpoint import export_bikes, import_bikes
from models.bikes.config import DAY_MS, SupervisionConfig
from models.bikes.events import Event
from models.bikes.held import HELD_DTYPE, HeldFixes
from models.bikes.placing import MidPlace, Place
from models.bikes.rules import BikeRules
from models.bikes.state import (
    F_DROPPED,
    F_OUTSIDE_SERVICE,
    F_PENDING,
    UNSEEN,
    BikeStates,
)
from models.geo.index import NO_ZONE, ZoneIndex

#: Counters in ``BikeSupervisor.stats`` (``held`` is a gauge: fixes waiting for the watermark;
#: ``behind_watermark`` counts fixes in time for their bike but older than the watermark;
#: ``reanchored`` counts second jumps in a row, applied because the fix jumped from was the glitch).
STAT_NAMES = (
    "fixes", "applied", "duplicate", "late", "behind_watermark", "dropped", "impossible_jump",
    "reanchored", "outside_service_area", "held",
)
_MAGIC = b"CSBS1"


class FixColumns(Protocol):
    """Validated fixes as columns (``models.gps.FixBatch`` fits): ``ts`` epoch ms, ``locked`` bool."""

    @property
    def bike_id(self) -> Sequence[str]: ...
    @property
    def operator(self) -> Sequence[str]: ...
    @property
    def ts(self) -> NDArray[np.int64]: ...
    @property
    def lon(self) -> NDArray[np.float64]: ...
    @property
    def lat(self) -> NDArray[np.float64]: ...
    @property
    def locked(self) -> NDArray[np.bool_]: ...
    def __len__(self) -> int: ...


def _event_time(e: Event) -> int:
    return e.ts


def _prev(values: np.ndarray, first: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Per fix, the previous fix's value of the same bike, or the bike's state for its first fix."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    return np.where(first, state, out)  # type: ignore[no-any-return]


class BikeSupervisor:
    """Supervise one partition's bikes: ``process`` batches of fixes, ``advance_to`` a watermark.

    Parameters
    ----------
    config
        Rule settings (:class:`~models.bikes.config.SupervisionConfig`).
    index
        Zones: ``parking_fence``, ``no_parking``, ``fence_required_area``, ``service_area``.

    Example
    -------
    >>> import shapely
    >>> from models.geo import Zone
    >>> from models.gps import FixBatch
    >>> idx = ZoneIndex([Zone("NP-1", "no_parking", "bridge", shapely.box(118.10, 24.50, 118.11, 24.51))])
    >>> sup = BikeSupervisor(SupervisionConfig(allowed_lateness_ms=0), idx)
    >>> sup.process(FixBatch.from_rows([("MT-1", "meituan", 0, 24.505, 118.105, True)]))
    [FirstActive(operator='meituan', bike_id='MT-1', day=0, ts=0)]
    >>> [(e.action, e.kind, e.opened_ts, e.ts) for e in sup.advance_to(300_000)]
    [('open', 'no_parking', 0, 300000)]
    >>> v = sup.process(FixBatch.from_rows([("MT-1", "meituan", 420_000, 24.505, 118.105, False)]))[0]
    >>> v.action, v.closed_ts, v.time_to_clear_s, v.reason
    ('close', 420000, 420.0, 'unlocked')
    """

    def __init__(self, config: SupervisionConfig, index: ZoneIndex) -> None:
        self.config = config
        self.index = index
        self.states = BikeStates()
        self.held = HeldFixes()
        self.watermark = UNSEEN
        self.max_seen = UNSEEN
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self._rules = BikeRules(config, index, self.states, self.stats)

    # -- input -----------------------------------------------------------------------------------
    def process(self, batch: FixColumns, watermark: int | None = None) -> list[Event]:
        """Take a batch (any order) and return the events it makes due.

        ``watermark``: the partition's event time from outside (its sources' clock, already minus the
        lateness); None: the newest fix seen minus ``allowed_lateness_ms``."""
        n = len(batch)
        if n == 0:
            return [] if watermark is None else self.advance_to(watermark)
        rows = self.states.rows_for(batch.bike_id, batch.operator)
        ts = np.asarray(batch.ts, np.int64)
        # Late: older than the bike's newest fix of earlier batches minus the lateness (within a
        # batch, fixes are put in per-bike time order, so none is late to another of the batch).
        seen = self.states.data["max_seen"]
        prior = seen[rows]
        keep = np.flatnonzero((prior == UNSEEN) | (ts >= prior - self.config.allowed_lateness_ms))
        np.maximum.at(seen, rows, ts)
        self.stats["fixes"] += n
        self.stats["late"] += n - len(keep)
        # In time for its bike but behind the watermark: applied at once, after timers that may
        # already have fired (a feed lagging the partition by more than the lateness).
        self.stats["behind_watermark"] += int(np.count_nonzero(ts[keep] <= self.watermark))
        held = np.empty(len(keep), HELD_DTYPE)
        held["row"], held["ts"] = rows[keep], ts[keep]
        held["lon"], held["lat"] = np.asarray(batch.lon)[keep], np.asarray(batch.lat)[keep]
        held["locked"] = np.asarray(batch.locked)[keep]
        self.held.add(held)
        self.states.dirty[rows] = True
        self.max_seen = max(self.max_seen, int(ts.max()))
        if watermark is None:
            watermark = self.max_seen - self.config.allowed_lateness_ms
        return self._advance(max(self.watermark, watermark))

    def advance_to(self, watermark_ms: int) -> list[Event]:
        """Event time reached ``watermark_ms`` (no fix at or before it is still expected): apply
        the held fixes up to it and emit what fell due (grace expiries, zombies, day ends)."""
        return self._advance(max(self.watermark, int(watermark_ms)))

    def _advance(self, watermark: int) -> list[Event]:
        self.watermark = watermark
        out: list[Event] = []
        fixes = self.held.release(watermark)
        if len(fixes):
            self._apply(fixes, out)
        self._sweep(watermark, out)
        self.stats["held"] = len(self.held)
        out.sort(key=_event_time)  # stable: one bike's events at one instant keep their causal order
        return out

    # -- applying released fixes -----------------------------------------------------------------
    def _apply(self, fixes: NDArray[np.void], out: list[Event]) -> None:
        data, cfg = self.states.data, self.config
        rows, ts = fixes["row"], fixes["ts"]
        last = data["last_ts"][rows]
        repeat = np.zeros(len(ts), bool)
        repeat[1:] = (rows[1:] == rows[:-1]) & (ts[1:] == ts[:-1])
        dup = repeat | (ts == last)
        late = (ts < last) & ~dup
        if dup.any() or late.any():
            self.stats["duplicate"] += int(dup.sum())
            self.stats["late"] += int(late.sum())
            fixes = fixes[~(dup | late)]
            rows, ts = fixes["row"], fixes["ts"]
            if not len(fixes):
                return
        self.states.dirty[rows] = True
        lon, lat, locked = fixes["lon"], fixes["lat"], fixes["locked"].astype(np.int8)
        cur = data[rows]
        first = np.ones(len(rows), bool)
        first[1:] = rows[1:] != rows[:-1]
        day = (ts + cfg.utc_offset_ms) // DAY_MS
        prev_locked = _prev(locked, first, cur["locked"])
        prev_ts = _prev(ts, first, cur["last_ts"])
        seen = prev_ts != UNSEEN
        kx, ky = self.index.projection.kx, self.index.projection.ky
        d2 = ((lon - _prev(lon, first, cur["last_lon"])) * kx) ** 2 + (
            (lat - _prev(lat, first, cur["last_lat"])) * ky) ** 2
        dt = np.where(seen, ts - np.where(seen, prev_ts, ts), 0)
        jump = seen & (d2 > cfg.jump_min_m**2) & (d2 * 1e6 > (cfg.max_speed_kmh / 3.6 * dt) ** 2)
        a2 = ((lon - cur["anchor_lon"]) * kx) ** 2 + ((lat - cur["anchor_lat"]) * ky) ** 2
        moved = (locked == 1) & (prev_locked == 1) & (a2 > cfg.move_threshold_m**2)
        if self.index.has("service_area"):
            outside = self.index.contains(lon, lat, "service_area") == NO_ZONE
            self.stats["outside_service_area"] += int(outside.sum())
        else:
            outside = np.zeros(len(ts), bool)
        prev_out = _prev(outside, first, (cur["flags"] & F_OUTSIDE_SERVICE) != 0)
        change = (locked != prev_locked) | (day != _prev(day, first, cur["day"])) | jump | moved
        change |= (cur["next_due"] <= ts) | (outside != prev_out) | ((cur["flags"] & (F_PENDING | F_DROPPED)) != 0)
        seg = np.cumsum(first) - 1
        hot_seg = np.zeros(int(seg[-1]) + 1, bool)
        hot_seg[seg[change]] = True
        hot = hot_seg[seg]
        # Quiet bikes: only their last position moves on.
        quiet_last = ~hot & np.append(first[1:], True)
        qr = rows[quiet_last]
        data["last_ts"][qr], data["last_lon"][qr], data["last_lat"][qr] = (
            ts[quiet_last], lon[quiet_last], lat[quiet_last])
        self.stats["applied"] += int((~hot).sum())
        hot_idx = np.flatnonzero(hot)
        if len(hot_idx):
            # Look up every locked fix of these bikes (and every unlock: the last sample of a place):
            # a park the vectorized view cannot foresee (a bike moved twice in one batch) would
            # otherwise cost a lookup call of its own.
            cand = (locked[hot_idx] == 1) | (prev_locked[hot_idx] == 1)
            # Hot fixes are whole runs of one bike: the first of a run is still its bike's first.
            self._apply_hot(fixes[hot_idx], first[hot_idx], day[hot_idx], outside[hot_idx], cand, out)

    def _apply_hot(self, fixes: NDArray[np.void], first: np.ndarray, day: np.ndarray, outside: np.ndarray,
                   cand: np.ndarray, out: list[Event]) -> None:
        """Per-bike rules for the fixes of ``fixes`` (grouped by bike, in time order; ``first``: a bike's first)."""
        data, step = self.states.data, self._rules.step
        rows = fixes["row"]
        where: list[Place | None] = [None] * len(fixes)
        mids: list[MidPlace | None] = [None] * len(fixes)
        ci = np.flatnonzero(cand)
        if len(ci):
            # Places of the fixes and of their midpoints with the previous position (the previous fix of
            # the batch, else the state's), in one vectorized call.
            lon, lat = fixes["lon"], fixes["lat"]
            plon = _prev(lon, first, data["last_lon"][rows])[ci]
            plat = _prev(lat, first, data["last_lat"][rows])[ci]
            mi = np.flatnonzero(np.isfinite(plon))
            place, zone, dist = self._rules.placer.locate(
                np.concatenate([lon[ci], (lon[ci][mi] + plon[mi]) / 2]),
                np.concatenate([lat[ci], (lat[ci][mi] + plat[mi]) / 2]))
            n, pl, zl, dl = len(ci), place.tolist(), zone.tolist(), dist.tolist()
            for j, k in enumerate(ci.tolist()):
                where[k] = (pl[j], zl[j], dl[j])
            for j, (m, a, b) in enumerate(zip(mi.tolist(), plon[mi].tolist(), plat[mi].tolist(), strict=True)):
                mids[int(ci[m])] = (pl[n + j], zl[n + j], dl[n + j], a, b)
        dropped = self.stats["dropped"]
        # Each bike's row is loaded once and stored once, all of them in bulk.
        bikes = rows[first]
        loaded = self.states.load_rows(bikes)
        rows_of_bikes, s = iter(loaded), list[Any]()
        for k, ((r, t, x, y, lk), d, o, f) in enumerate(
                zip(fixes.tolist(), day.tolist(), outside.tolist(), first.tolist(), strict=True)):
            if f:
                s = next(rows_of_bikes)
            step(r, s, t, x, y, lk, d, where[k], o, out, mids[k])
        self.states.store_rows(bikes, loaded)
        self.stats["applied"] += len(fixes) - (self.stats["dropped"] - dropped)

    def _sweep(self, watermark: int, out: list[Event]) -> None:
        """Fire the timers due by ``watermark`` for bikes without a fix now (earliest first)."""
        data = self.states.data
        due = data["next_due"][: len(self.states)]
        rows = np.flatnonzero(due <= watermark)
        rows = rows[np.argsort(due[rows], kind="stable")]
        loaded = self.states.load_rows(rows)
        for r, s in zip(rows.tolist(), loaded, strict=True):
            self._rules.fire(r, s, watermark, out)
        self.states.store_rows(rows, loaded)
        self.states.dirty[rows] = True

    # -- checkpointing ---------------------------------------------------------------------------
    def export_bikes(self, bike_ids: Iterable[str]) -> dict[str, bytes]:
        """Self-contained bytes per bike (state row and held fixes), for a changelog keyed by bike
        (layout: :func:`models.bikes.checkpoint.export_bikes`)."""
        return export_bikes(self.states, self.held, bike_ids)

    def drain_changes(self) -> dict[str, bytes]:
        """:meth:`export_bikes` of every bike changed since the last call."""
        return self.export_bikes(self.states.drain_dirty())

    def import_bikes(self, entries: Mapping[str, bytes]) -> None:
        """Load bikes exported by :meth:`export_bikes` (into a fresh supervisor, on restore)."""
        self.max_seen = max(self.max_seen, import_bikes(self.states, self.held, entries))

    def snapshot(self) -> bytes:
        """The whole supervisor state (bikes, held fixes, watermark, counters) as bytes."""
        head = orjson.dumps({"watermark": self.watermark, "max_seen": self.max_seen, "stats": self.stats})
        states = self.states.snapshot()
        return b"".join([_MAGIC, len(head).to_bytes(8, "little"), head,
                         len(states).to_bytes(8, "little"), states, self.held.to_bytes()])

    @classmethod
    def restore(cls, config: SupervisionConfig, index: ZoneIndex, blob: bytes) -> BikeSupervisor:
        """A supervisor continuing exactly where :meth:`snapshot` was taken."""
        if not blob.startswith(_MAGIC):
            raise ValueError("not a BikeSupervisor snapshot")
        at = len(_MAGIC)
        size = int.from_bytes(blob[at : at + 8], "little")
        head = orjson.loads(blob[at + 8 : at + 8 + size])
        at += 8 + size
        size = int.from_bytes(blob[at : at + 8], "little")
        sup = cls(config, index)
        sup.states = BikeStates.restore(blob[at + 8 : at + 8 + size])
        sup.held = HeldFixes.from_bytes(blob[at + 8 + size :])
        sup.watermark, sup.max_seen = head["watermark"], head["max_seen"]
        sup.stats.update(head["stats"])
        sup._rules = BikeRules(config, index, sup.states, sup.stats)
        return sup
