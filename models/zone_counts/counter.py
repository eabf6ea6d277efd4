"""The counter of :mod:`models.zone_counts` (the module docstring there describes its state and order)."""

from __future__ import annotations

__all__ = ["ZoneMinuteCounter"]

from collections.abc import Callable, Iterable
from itertools import repeat

import numpy as np
from numpy.typing import NDArray

from models.codes import codes_of
from models.gps import FixBatch
from models.zone_counts.records import (
    BIKE_FORMAT,
    MINUTE_MS,
    NONE,
    UNSEEN,
    ZONE_BITS,
    ZONE_MASK,
    BatchOutcome,
    BikeSeen,
    Window,
    _empty,
    union,
)

_I64 = np.int64
_SMALL_ROUND = 16  # fewer fixes than this left in a round: finish them fix by fix
_CAPACITY = 1024  # initial bike rows (doubled when full)
_COUNTED_WIDTH = 16  # initial columns of counted windows per bike (doubled when a bike needs more)


class ZoneMinuteCounter:
    """Count distinct fixes, distinct bikes and locked fixes per minute and zone, for one partition.

    Parameters
    ----------
    lateness_ms
        A fix older than its bike's newest fix by more than this is late (not aggregated).
    horizon_ms
        Windows ending more than this before the partition's newest event time are evicted; a fix for
        an evicted window is late. Must exceed ``lateness_ms``; generous, so that skew between source
        partitions never reaches it.
    ring
        At most this many recent fix times are kept per bike for duplicate detection (at least 2).

    Example
    -------
    >>> c = ZoneMinuteCounter(lateness_ms=300_000)
    >>> b = FixBatch.from_rows([("MT-1", "mt", 60_000, 24.5, 118.1, True), ("MT-1", "mt", 90_000, 24.5, 118.1, False)])
    >>> out = c.process(0, b, np.array(["g1_1", "g1_1"]))
    >>> out.accepted, c.window_keys(out.windows), c.windows[(60_000, "g1_1")]
    (2, [(60000, 'g1_1')], Window(fixes=2, bikes=1, locked=1, last_offset=0))
    >>> c.process(1, b, np.array(["g1_1", "g1_1"])).duplicate  # the same fixes again: no double count
    2
    >>> c.bike("MT-1")
    BikeSeen(last_ts=90000, recent=[60000, 90000], counted=[(60000, 'g1_1')])
    """

    def __init__(self, lateness_ms: int = 300_000, horizon_ms: int = 3_600_000, ring: int = 16) -> None:
        if horizon_ms <= lateness_ms:
            raise ValueError("horizon_ms must exceed lateness_ms")
        if not 2 <= ring < 1 << 16:
            raise ValueError("ring must be in [2, 65535]")
        self.lateness_ms = lateness_ms
        self.horizon_ms = horizon_ms
        self.ring = ring
        self.watermark = 0
        # Bikes: row per bike id (rows stay once given; a row without an accepted fix has last UNSEEN).
        self._slot: dict[str, int] = {}
        self._ids: list[str] = []
        self._keys: list[bytes] = []  # b"b|<bike>", the state key
        # One row per bike: newest fix time (UNSEEN: none accepted yet), the ring of recent fix times
        # (columns 1..ring: right-aligned, oldest first, NONE: empty), the codes of the windows it was counted
        # in (the other columns, in no order; NONE or past its lateness horizon: free).
        self._bike = np.full((_CAPACITY, 1 + ring + _COUNTED_WIDTH), NONE, _I64)
        self._bike[:, 0] = UNSEEN
        self._mark = np.zeros(_CAPACITY, _I64)  # scratch of process()
        # Zones: code <-> name; codes below ``zones_persisted`` are in the state table.
        self._zone_code: dict[str, int] = {}
        self._key_code: dict[int, int] = {}  # int zone key (process's zone_name) -> code
        self.zones: list[str] = []
        self.zones_persisted = 0
        # Windows: row per live window code, free rows reused after eviction.
        self._wslot: dict[int, int] = {}
        self._wcode = np.full(256, NONE, _I64)
        self._wdata = np.zeros((256, 4), _I64)  # fixes, bikes, locked, last_offset
        self._wfree: list[int] = list(range(255, -1, -1))

    # ----------------------------------------------------------------------------------------- process

    def process(self, offset: int, batch: FixBatch, zones: np.ndarray,
                zone_name: Callable[[int], str] | None = None) -> BatchOutcome:
        """Apply the fixes of the message at ``offset`` (in message order) and report what changed.

        ``zones``: the zone of each fix (str); or, with ``zone_name``, an int key per fix that ``zone_name``
        turns into the zone's name (``models.grid.GridZones.keys``/``name``: names made only for keys not seen
        yet, not per fix). Bikes are independent, so round ``r`` applies the ``r``-th fix of every bike of the
        message at once; once a round is small the rest goes fix by fix.
        """
        out = BatchOutcome()
        n = len(batch)
        if n == 0:
            return out
        ts = batch.ts.astype(_I64, copy=False)
        slots = self._slots_for(batch.bike_id)
        minute = ts // MINUTE_MS
        wcode = (minute << ZONE_BITS) | self._zone_codes(zones, zone_name)
        expired = (minute + 1) * MINUTE_MS <= self.watermark - self.horizon_ms  # windows past the horizon
        any_expired = bool(expired.any())
        mark, pos = self._mark, np.arange(n)
        mark[slots] = pos
        acc_parts: list[NDArray[np.int64]] = []
        new_parts: list[NDArray[np.bool_]] = []
        distinct = bool((mark[slots] == pos).all())
        if distinct:  # one fix per bike: one round
            a, nb = self._round(pos, slots, ts, wcode, expired if any_expired else None, out)
            acc_parts.append(a)
            new_parts.append(nb)
        else:
            order = np.argsort(slots, kind="stable")  # by bike, then message order
            s_sorted = slots[order]
            first = np.empty(n, np.bool_)
            first[0] = True
            np.not_equal(s_sorted[1:], s_sorted[:-1], out=first[1:])
            start = np.maximum.accumulate(np.where(first, pos, 0))
            rank = np.empty(n, _I64)
            rank[order] = pos - start
            by_rank = np.argsort(rank, kind="stable")  # round by round, message order within
            ends = np.cumsum(np.bincount(rank))
            begin = 0
            for end in ends.tolist():
                if end - begin < _SMALL_ROUND and end < n:
                    a, nb = self._replay(np.sort(by_rank[begin:]), slots, ts, wcode, expired, out)
                    acc_parts.append(a)
                    new_parts.append(nb)
                    break
                a, nb = self._round(by_rank[begin:end], slots, ts, wcode, expired if any_expired else None, out)
                acc_parts.append(a)
                new_parts.append(nb)
                begin = end
        acc = acc_parts[0] if len(acc_parts) == 1 else np.concatenate(acc_parts)
        if len(acc):
            new_bike = new_parts[0] if len(new_parts) == 1 else np.concatenate(new_parts)
            out.accepted = len(acc)
            out.bikes = slots[acc] if distinct else union([slots[acc]])
            self.watermark = max(self.watermark, int(ts[acc].max()))
            self._count_windows(offset, wcode[acc], new_bike, batch.locked[acc], out)
        return out

    def _round(self, idx: NDArray[np.int64], slots: NDArray[np.int64], ts: NDArray[np.int64],
               wcode: NDArray[np.int64], expired: NDArray[np.bool_] | None,
               out: BatchOutcome) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Apply one fix of each of several bikes (``idx``: positions in the message, one per bike) at once;
        returns the accepted positions and, for each, whether its bike is new in its window."""
        s, t = slots[idx], ts[idx]
        ring = self.ring
        rows = self._bike[s]
        last = rows[:, 0]
        if not (t > last).all():  # maybe duplicates or late fixes (newer fixes are neither)
            dup = (rows[:, 1:1 + ring] == t[:, None]).any(1)
            late = ~dup & (t < last - self.lateness_ms)
            if expired is not None:
                late |= ~dup & expired[idx]
            ok = ~(dup | late)
            out.duplicate += int(dup.sum())
            out.late += int(late.sum())
            idx, s, t, rows = idx[ok], s[ok], t[ok], rows[ok]
        elif expired is not None:
            ok = ~expired[idx]
            out.late += len(idx) - int(ok.sum())
            idx, s, t, rows = idx[ok], s[ok], t[ok], rows[ok]
        if not len(idx):
            return idx, np.zeros(0, np.bool_)
        newest = np.maximum(rows[:, 0], t)
        horizon = newest - self.lateness_ms
        rows[:, 0] = newest
        # The ring: drop the fixes past the horizon, keep the newest ring - 1, append t.
        recent = rows[:, 1:1 + ring]
        keep = recent >= horizon[:, None]  # never NONE
        recent[~keep] = NONE
        holes = keep[:, :-1] & ~keep[:, 1:]  # a kept fix before a dropped one (out-of-order fixes)
        if holes.any():
            some = np.flatnonzero(holes.any(1))
            order = np.argsort(keep[some], axis=1, kind="stable")  # right-align, keeping the order
            recent[some] = np.take_along_axis(recent[some], order, 1)
        recent[:, :-1] = recent[:, 1:].copy()
        recent[:, -1] = t
        # Counted windows: a bike is new in a window it was not counted in since its lateness horizon.
        w = wcode[idx]
        new_bike = ~(rows[:, 1 + ring:] == w[:, None]).any(1)
        if new_bike.any():
            which = np.flatnonzero(new_bike)
            free = rows[which, 1 + ring:] < ((horizon[which] // MINUTE_MS) << ZONE_BITS)[:, None]
            col = free.argmax(1)
            full = ~free[np.arange(len(col)), col]
            if full.any():
                col[full] = rows.shape[1] - 1 - ring
                self._widen_counted(2 * (rows.shape[1] - 1 - ring))
                rows = np.concatenate([rows, np.full((len(rows), self._bike.shape[1] - rows.shape[1]), NONE, _I64)], 1)
            rows[which, 1 + ring + col] = w[which]
        self._bike[s] = rows
        return idx, new_bike

    def _replay(self, idx: NDArray[np.int64], slots: NDArray[np.int64], ts: NDArray[np.int64],
                wcode: NDArray[np.int64], expired: NDArray[np.bool_],
                out: BatchOutcome) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Apply the fixes at ``idx`` (in message order) fix by fix: the tail of bikes with many fixes."""
        by_bike: dict[int, list[int]] = {}
        for j, s in zip(idx.tolist(), slots[idx].tolist(), strict=True):
            by_bike.setdefault(s, []).append(j)
        ts_l, w_l, exp_l = ts.tolist(), wcode.tolist(), expired.tolist()
        lateness, keep = self.lateness_ms, self.ring - 1
        accepted: list[int] = []
        new_bike: list[bool] = []
        for s, positions in by_bike.items():
            row = self._bike[s].tolist()
            last = row[0]
            recent = [x for x in row[1:1 + self.ring] if x != NONE]
            counted = [x for x in row[1 + self.ring:] if x != NONE]
            for j in positions:
                t = ts_l[j]
                if t in recent:
                    out.duplicate += 1
                    continue
                if t < last - lateness or exp_l[j]:
                    out.late += 1
                    continue
                last = max(last, t)
                horizon = last - lateness
                recent = [x for x in recent if x >= horizon][-keep:]
                recent.append(t)
                w = w_l[j]
                accepted.append(j)
                if w in counted:
                    new_bike.append(False)
                    continue
                new_bike.append(True)
                floor = (horizon // MINUTE_MS) << ZONE_BITS
                counted = [x for x in counted if x >= floor]
                counted.append(w)
            self._set_row(s, last, recent, counted)
        return np.array(accepted, _I64), np.array(new_bike, np.bool_)

    def _count_windows(self, offset: int, codes: NDArray[np.int64], new_bike: NDArray[np.bool_],
                       locked: NDArray[np.bool_], out: BatchOutcome) -> None:
        """Add the accepted fixes (in windows ``codes``) to their windows.

        The offset guard is per window and message: a window that already holds this offset (or a later
        one) took all of this message's fixes before a crash; any other window takes them all now.
        """
        u, inv = np.unique(codes, return_inverse=True)
        m = len(u)
        counts = np.empty((m, 3), _I64)
        counts[:, 0] = np.bincount(inv, minlength=m)
        counts[:, 1] = np.bincount(inv[new_bike], minlength=m)
        counts[:, 2] = np.bincount(inv[locked], minlength=m)
        rows = self._window_rows(u)
        take = self._wdata[rows, 3] < offset  # else already counted before a restart: the bikes catch up
        if not take.all():
            rows, u, counts = rows[take], u[take], counts[take]
        self._wdata[rows, :3] += counts
        self._wdata[rows, 3] = offset
        out.windows = u

    # ----------------------------------------------------------------------------------------- rows

    def _slots_for(self, bike_ids: list[str]) -> NDArray[np.int64]:
        return codes_of(self._slot, bike_ids, self._slot_of)  # rows in order of first fix

    def _slot_of(self, bike_id: str) -> int:
        s = self._slot.get(bike_id)
        if s is None:
            s = self._slot[bike_id] = len(self._ids)
            self._ids.append(bike_id)
            self._keys.append(b"b|" + bike_id.encode())
            if s >= len(self._bike):
                self._grow(2 * len(self._bike))
        return s

    def _grow(self, cap: int) -> None:
        more = np.full((cap - len(self._bike), self._bike.shape[1]), NONE, _I64)
        more[:, 0] = UNSEEN
        self._bike = np.concatenate([self._bike, more])
        self._mark = np.zeros(cap, _I64)

    def _widen_counted(self, width: int) -> None:
        wider = np.full((len(self._bike), 1 + self.ring + width), NONE, _I64)
        wider[:, :self._bike.shape[1]] = self._bike
        self._bike = wider

    def _set_row(self, s: int, last: int, recent: list[int], counted: list[int]) -> None:
        """Store one bike's state (``recent`` at most ``ring`` long, in order; ``counted`` any length)."""
        ring = self.ring
        if len(counted) > self._bike.shape[1] - 1 - ring:
            self._widen_counted(max(len(counted), 2 * (self._bike.shape[1] - 1 - ring)))
        row = [NONE] * self._bike.shape[1]
        row[0] = last
        row[1 + ring - len(recent):1 + ring] = recent
        row[1 + ring:1 + ring + len(counted)] = counted
        self._bike[s] = row

    def _zone_codes(self, zones: np.ndarray, zone_name: Callable[[int], str] | None) -> NDArray[np.int64]:
        if zone_name is None:
            return codes_of(self._zone_code, zones.tolist(), self._zone_of)  # codes in order of first fix
        keys, inverse = np.unique(zones, return_inverse=True)  # a few hundred cells: one lookup each
        by_key = self._key_code
        codes = codes_of(by_key, keys.tolist(), lambda k: by_key.__setitem__(k, self._zone_of(zone_name(k))))
        return codes[inverse.reshape(-1)]

    def _zone_of(self, name: str) -> int:
        code = self._zone_code.get(name)
        if code is None:
            code = self._zone_code[name] = len(self.zones)
            self.zones.append(name)
            if code > ZONE_MASK:
                raise OverflowError("too many zones")
        return code

    def _window_rows(self, codes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Rows of the windows ``codes`` (unique), adding missing ones (empty, last_offset -1)."""
        get = self._wslot.get
        rows = list(map(get, codes.tolist()))
        try:
            return np.array(rows, _I64)
        except TypeError:  # some are new
            pass
        for i, r in enumerate(rows):
            if r is None:
                if not self._wfree:
                    cap = len(self._wcode)
                    self._wcode = np.concatenate([self._wcode, np.full(cap, NONE, _I64)])
                    self._wdata = np.concatenate([self._wdata, np.zeros((cap, 4), _I64)])
                    self._wfree = list(range(2 * cap - 1, cap - 1, -1))
                r = rows[i] = self._wfree.pop()
                code = int(codes[i])
                self._wslot[code] = r
                self._wcode[r] = code
                self._wdata[r] = (0, 0, 0, -1)
        return np.array(rows, _I64)

    # ----------------------------------------------------------------------------------------- views

    def _key(self, code: int) -> tuple[int, str]:
        return (code >> ZONE_BITS) * MINUTE_MS, self.zones[code & ZONE_MASK]

    def _code(self, key: tuple[int, str]) -> int:
        return ((key[0] // MINUTE_MS) << ZONE_BITS) | self._zone_of(key[1])

    def window_keys(self, codes: Iterable[int] | NDArray[np.int64]) -> list[tuple[int, str]]:
        """``(minute_ms, zone)`` of window codes."""
        return list(map(self._key, np.asarray(codes, _I64).tolist()))

    def bike_ids_of(self, rows: NDArray[np.int64]) -> list[str]:
        """Bike ids of bike rows (:attr:`BatchOutcome.bikes`)."""
        return list(map(self._ids.__getitem__, rows.tolist()))

    def bike_ids(self) -> list[str]:
        """Every bike with an accepted fix."""
        return self.bike_ids_of(np.flatnonzero(self._bike[:len(self._ids), 0] != UNSEEN))

    def bike(self, bike_id: str) -> BikeSeen | None:
        """One bike's state, readable (counted windows trimmed to its lateness horizon, sorted)."""
        s = self._slot.get(bike_id)
        if s is None or self._bike[s, 0] == UNSEEN:
            return None
        row = self._bike[s].tolist()
        last = row[0]
        floor = ((last - self.lateness_ms) // MINUTE_MS) << ZONE_BITS
        return BikeSeen(last, [x for x in row[1:1 + self.ring] if x != NONE],
                        self.window_keys(sorted(x for x in row[1 + self.ring:] if x >= floor)))

    @property
    def windows(self) -> dict[tuple[int, str], Window]:
        """Every live window (a copy)."""
        codes = list(self._wslot)
        rows = np.array([self._wslot[c] for c in codes], _I64)
        data = self._wdata[rows].tolist() if codes else []
        return {self._key(c): Window(*d) for c, d in zip(codes, data, strict=True)}

    def window_codes(self) -> NDArray[np.int64]:
        """Codes of every live window."""
        return np.fromiter(self._wslot, _I64, len(self._wslot))

    # ----------------------------------------------------------------------------------------- persistence

    def zone_entries(self, partition: int) -> list[tuple[bytes, bytes]]:
        """State entries ``z|<partition>|<code>`` -> name of the zones not yet persisted (write them before
        the bikes that refer to them; then set :attr:`zones_persisted` to ``len(zones)``)."""
        return [(f"z|{partition}|{c}".encode(), self.zones[c].encode())
                for c in range(self.zones_persisted, len(self.zones))]

    def window_state(self, codes: NDArray[np.int64]) -> tuple[list[int], list[str], NDArray[np.int64]]:
        """The live windows among ``codes`` (unique), sorted by minute: their minutes (ms), zones and counts
        ``(fixes, bikes, locked, last_offset)`` (one row each; :func:`pack_windows` gives their entries)."""
        codes = np.sort(codes)
        rows = list(map(self._wslot.get, codes.tolist()))
        if None in rows:
            live = [r is not None for r in rows]
            codes = codes[live]
            rows = [r for r in rows if r is not None]
        minutes = ((codes >> ZONE_BITS) * MINUTE_MS).tolist()
        zones = list(map(self.zones.__getitem__, (codes & ZONE_MASK).tolist()))
        return minutes, zones, self._wdata[np.array(rows, _I64)] if rows else np.zeros((0, 4), _I64)

    def bike_entries(self, partition: int, rows: NDArray[np.int64]) -> list[tuple[int, bytes, bytes]]:
        """State entries ``(partition, b"b|<bike>", value)`` of bike rows. The value is little-endian int64:
        ``0xB1 | ring << 8 | partition << 24``, the newest fix time, the ring of recent fix times (right-aligned,
        oldest first), the codes of the windows counted within the bike's lateness horizon (``NONE`` pads)."""
        if not len(rows):
            return []
        ring = self.ring
        words = np.empty((len(rows), 1 + self._bike.shape[1]), "<i8")
        words[:, 0] = BIKE_FORMAT | (ring << 8) | (partition << 24)
        words[:, 1:] = self._bike[rows]
        counted = words[:, 2 + ring:]
        counted[counted < (((words[:, 1] - self.lateness_ms) // MINUTE_MS) << ZONE_BITS)[:, None]] = NONE
        buf, size = words.tobytes(), 8 * words.shape[1]
        values = [buf[i:i + size] for i in range(0, len(buf), size)]
        return list(zip(repeat(partition), map(self._keys.__getitem__, rows.tolist()), values, strict=False))

    def bike_bytes(self, bike_id: str, partition: int) -> bytes:
        """The persisted form of one bike's state (see :meth:`bike_entries`)."""
        return self.bike_entries(partition, np.array([self._slot[bike_id]], _I64))[0][2]

    def evict(self) -> NDArray[np.int64]:
        """Drop windows past the horizon; returns their codes (so the caller can delete them durably)."""
        limit = self.watermark - self.horizon_ms
        code = self._wcode
        gone_rows = np.flatnonzero((((code >> ZONE_BITS) + 1) * MINUTE_MS <= limit) & (code != NONE))
        if not len(gone_rows):
            return _empty()
        codes = code[gone_rows]
        for c in codes.tolist():
            del self._wslot[c]
        code[gone_rows] = NONE
        self._wfree += gone_rows.tolist()
        return codes

    def restore_bike(self, bike_id: str, seen: BikeSeen) -> None:
        """Load one bike's state (after a restart)."""
        self._set_row(self._slot_of(bike_id), seen.last_ts, list(seen.recent)[-self.ring:],
                      [self._code(k) for k in seen.counted])
        self.watermark = max(self.watermark, seen.last_ts)

    def restore_window(self, key: tuple[int, str], window: Window) -> None:
        """Load one window's persisted counts (after a restart)."""
        row = int(self._window_rows(np.array([self._code(key)], _I64))[0])
        self._wdata[row] = (window.fixes, window.bikes, window.locked, window.last_offset)

    def load(self, partition: int, entries: Iterable[tuple[bytes, bytes]]) -> ZoneMinuteCounter:
        """Restore the state of ``partition`` into this new counter from the state table's entries (any
        partitions, any order; empty values are deletions); returns ``self``."""
        if self.zones or self._ids or self._wslot:
            raise ValueError("load() needs a new counter")
        zprefix, wprefix = f"z|{partition}|".encode(), f"w|{partition}|".encode()
        zones: dict[int, str] = {}
        windows, bikes = [], []
        for k, v in entries:
            if not v:
                continue
            if k.startswith(b"b|"):
                bikes.append((k, v))
            elif k.startswith(wprefix):
                windows.append((k, v))
            elif k.startswith(zprefix):
                zones[int(k[len(zprefix):])] = v.decode()
        for code in range(max(zones, default=-1) + 1):
            name = zones.get(code)
            self.zones.append("" if name is None else name)  # a hole never named (a lost write): unused
            if name is not None:
                self._zone_code[name] = code
        self.zones_persisted = len(self.zones)
        for k, v in windows:
            _, _, minute, zone = k.decode().split("|", 3)
            self.restore_window((int(minute), zone), Window.from_bytes(v))
        for k, v in bikes:
            if v[:1] == b"[":  # JSON (earlier versions)
                p, seen = BikeSeen.from_bytes(v)
                if p == partition:
                    self.restore_bike(k[2:].decode(), seen)
                continue
            words = np.frombuffer(v, "<i8").tolist()
            head = words[0]
            if head >> 24 != partition:
                continue
            ring = (head >> 8) & 0xFFFF
            last = words[1]
            self._set_row(self._slot_of(k[2:].decode()), last, [x for x in words[2:2 + ring] if x != NONE][-self.ring:],
                          [x for x in words[2 + ring:] if x != NONE])
            self.watermark = max(self.watermark, last)
        return self
