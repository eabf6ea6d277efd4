"""The counter of :mod:`models.zone_counts`: applying messages of fixes (the module docstring there describes its
state and order; the state itself is :class:`models.zone_counts.state.CounterState`)."""

from __future__ import annotations

__all__ = ["ZoneMinuteCounter"]

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from models.gps import FixBatch
from models.zone_counts.records import MINUTE_MS, NONE, ZONE_BITS, BatchOutcome, union
from models.zone_counts.state import CounterState

_I64 = np.int64
_SMALL_ROUND = 16  # fewer fixes than this left in a round: finish them fix by fix


class ZoneMinuteCounter(CounterState):
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
