"""The columnar state of a zone counter (:class:`CounterState`): bike rows, zone codes and window rows, the
readable views of them, and their state entries (what is persisted and how a counter is rebuilt from it). The
counting itself is :class:`models.zone_counts.counter.ZoneMinuteCounter`'s; the layout is described in
:mod:`models.zone_counts`."""

from __future__ import annotations

__all__ = ["CounterState"]

from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Self

import numpy as np
from numpy.typing import NDArray

from models.codes import codes_of
from models.zone_counts.records import (
    BIKE_FORMAT,
    MINUTE_MS,
    NONE,
    UNSEEN,
    ZONE_BITS,
    ZONE_MASK,
    BikeSeen,
    Window,
    _empty,
)

_I64 = np.int64
_CAPACITY = 1024  # initial bike rows (doubled when full)
_COUNTED_WIDTH = 16  # initial columns of counted windows per bike (doubled when a bike needs more)


class CounterState:
    """Bikes, zones and windows of one partition's counter, as int64 matrices (see :mod:`models.zone_counts`);
    parameters as :class:`~models.zone_counts.counter.ZoneMinuteCounter`'s."""

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
        ``0xB2 | ring << 8 | partition << 24``, ``recent | counted << 32`` (how many of each follow), the newest
        fix time, the recent fix times (oldest first), the codes of the windows counted within the bike's
        lateness horizon. Only live slots are written: a bike with one recent fix and one window is 5 words
        where the whole row (format ``0xB1``, still read by :meth:`load`) was ``2 + ring + 16``."""
        if not len(rows):
            return []
        ring = self.ring
        row = self._bike[rows]
        words = np.empty((len(rows), 2 + row.shape[1]), "<i8")  # the two head words, then the row
        words[:, 0] = BIKE_FORMAT | (ring << 8) | (partition << 24)
        words[:, 2:] = row
        counted = words[:, 3 + ring:]
        counted[counted < (((row[:, 0] - self.lateness_ms) // MINUTE_MS) << ZONE_BITS)[:, None]] = NONE
        keep = words != NONE
        keep[:, :3] = True
        n_recent = keep[:, 3:3 + ring].sum(1)
        words[:, 1] = n_recent | (keep[:, 3 + ring:].sum(1) << 32)
        buf = words[keep].tobytes()  # row by row, each row's live words in column order
        ends = (np.cumsum(keep.sum(1)) * 8).tolist()
        values = [buf[a:z] for a, z in zip([0, *ends[:-1]], ends, strict=True)]
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

    def load(self, partition: int, entries: Iterable[tuple[bytes, bytes]]) -> Self:
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
            if head & 0xFF == BIKE_FORMAT:  # live slots only
                n_recent, last = words[1] & 0xFFFFFFFF, words[2]
                recent, counted = words[3:3 + n_recent], words[3 + n_recent:]
            else:  # 0xB1: the whole row, NONE in the empty slots
                last = words[1]
                recent = [x for x in words[2:2 + ring] if x != NONE]
                counted = [x for x in words[2 + ring:] if x != NONE]
            self._set_row(self._slot_of(k[2:].decode()), last, recent[-self.ring:], counted)
            self.watermark = max(self.watermark, last)
        return self
