"""Per-minute, per-zone counts of distinct GPS fixes, exact under replays, retries and restarts.

One :class:`ZoneMinuteCounter` serves one partition of the (bike-keyed) fixes topic. Two kinds of
state make the counts exact without broker transactions:

- per bike (:class:`BikeSeen`): the event times of its recent accepted fixes. A fix seen before (the same
  bike and ``ts``: a replayed recording, an operator resend) is a *duplicate*; a fix older than the bike's
  newest fix minus the allowed lateness is *late*. Both are counted, neither is aggregated. The decision
  depends only on the bike's own fix order, so it is the same at any replay speed.
- per window (:class:`Window`, one per minute and zone): the counts and the offset of the last message
  that changed them. A message re-delivered after a crash (offset <= ``last_offset``) does not count twice.

The caller persists the changed state (window first, then bike, as :meth:`ZoneMinuteCounter.bike_bytes`: see
``docs/architecture.md``) and emits one upsert row per touched window, versioned by ``last_offset``.

:meth:`ZoneMinuteCounter.process` gives exactly the result of applying the fixes one by one in message order
(``tests/models/test_zone_counts_fast.py`` checks it against that loop), but takes a bike's fixes together and
counts windows with numpy.
"""

from __future__ import annotations

__all__ = ["BikeSeen", "Window", "ZoneMinuteCounter", "MINUTE_MS", "BatchOutcome"]

from dataclasses import dataclass, field

import numpy as np
import orjson

from models.gps import FixBatch

MINUTE_MS = 60_000


@dataclass(slots=True)
class BikeSeen:
    """What a counter remembers of one bike: newest fix, recent fixes, recently counted windows.

    ``counted`` may hold windows past the bike's lateness horizon (they never match again) until
    :meth:`ZoneMinuteCounter.trim`.
    """

    last_ts: int
    recent: list[int] = field(default_factory=list)
    counted: list[tuple[int, str]] = field(default_factory=list)

    def to_bytes(self, partition: int) -> bytes:
        return orjson.dumps([partition, self.last_ts, self.recent, self.counted])

    @staticmethod
    def from_bytes(data: bytes) -> tuple[int, BikeSeen]:
        p, last, recent, counted = orjson.loads(data)
        return p, BikeSeen(last, recent, [(m, z) for m, z in counted])


@dataclass(slots=True)
class Window:
    """Counts of one (minute, zone) in one partition."""

    fixes: int = 0
    bikes: int = 0
    locked: int = 0
    last_offset: int = -1

    def to_bytes(self) -> bytes:
        return orjson.dumps([self.fixes, self.bikes, self.locked, self.last_offset])

    @staticmethod
    def from_bytes(data: bytes) -> Window:
        return Window(*orjson.loads(data))


@dataclass(slots=True)
class BatchOutcome:
    """What one message changed: windows to persist and emit, bikes to persist, and tallies."""

    windows: set[tuple[int, str]] = field(default_factory=set)
    bikes: set[str] = field(default_factory=set)
    accepted: int = 0
    duplicate: int = 0
    late: int = 0


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
        At most this many recent fix times are kept per bike for duplicate detection.

    Example
    -------
    >>> c = ZoneMinuteCounter(lateness_ms=300_000)
    >>> b = FixBatch.from_rows([("MT-1", "mt", 60_000, 24.5, 118.1, True), ("MT-1", "mt", 90_000, 24.5, 118.1, False)])
    >>> out = c.process(0, b, np.array(["g1_1", "g1_1"]))
    >>> out.accepted, c.windows[(60_000, "g1_1")]
    (2, Window(fixes=2, bikes=1, locked=1, last_offset=0))
    >>> c.process(1, b, np.array(["g1_1", "g1_1"])).duplicate  # the same fixes again: no double count
    2
    """

    def __init__(self, lateness_ms: int = 300_000, horizon_ms: int = 3_600_000, ring: int = 16) -> None:
        if horizon_ms <= lateness_ms:
            raise ValueError("horizon_ms must exceed lateness_ms")
        self.lateness_ms = lateness_ms
        self.horizon_ms = horizon_ms
        self.ring = ring
        self.bikes: dict[str, BikeSeen] = {}
        self.windows: dict[tuple[int, str], Window] = {}
        self.watermark = 0
        self._trim_at = 2 * (lateness_ms // MINUTE_MS) + 16  # see trim()

    def process(self, offset: int, batch: FixBatch, zones: np.ndarray) -> BatchOutcome:
        """Apply the fixes of the message at ``offset`` (in message order) and report what changed.

        Bikes are independent, so the fixes are grouped by bike (each bike's in message order). A bike whose
        fixes are strictly increasing and all newer than its newest fix (the common case) has no duplicate and
        no late fix but those of expired windows, and is taken in one step; any other bike is replayed fix by
        fix. Windows are then counted with numpy.
        """
        out = BatchOutcome()
        n = len(batch)
        if n == 0:
            return out
        ts = batch.ts
        minute = ts - ts % MINUTE_MS
        expired = minute + MINUTE_MS <= self.watermark - self.horizon_ms  # windows past the horizon
        fix_keys = list(zip(minute.tolist(), zones.tolist(), strict=True))
        keys = list(dict.fromkeys(fix_keys))  # the windows, in order of first fix (dicts: cheaper than np.unique)
        win = np.fromiter(map({k: i for i, k in enumerate(keys)}.__getitem__, fix_keys), np.int64, n)
        new_bikes = [0] * len(keys)
        bike_code = {b: i for i, b in enumerate(dict.fromkeys(batch.bike_id))}  # in order of first fix
        codes = np.fromiter(map(bike_code.__getitem__, batch.bike_id), np.int64, n)
        order = np.argsort(codes, kind="stable")  # by bike, then message order
        sorted_code, sorted_ts = codes[order], ts[order]
        same = sorted_code[1:] == sorted_code[:-1]
        disordered = set(sorted_code[1:][same & (sorted_ts[1:] <= sorted_ts[:-1])].tolist())
        ends = [*(np.flatnonzero(~same) + 1).tolist(), n]
        ts_l, win_l, late_l = sorted_ts.tolist(), win[order].tolist(), expired[order].tolist()
        any_late = bool(expired.any())
        accepted: list[int] = []  # positions in ``order``
        lateness, keep, trim_at = self.lateness_ms, self.ring - 1, self._trim_at
        for code, (bike_id, seen, start, end) in enumerate(
                zip(bike_code, map(self.bikes.get, bike_code), [0, *ends[:-1]], ends, strict=True)):
            t = ts_l[start]
            if end - start == 1 and (seen is None or t > seen.last_ts):  # one fix, newer: the common case
                if any_late and late_l[start]:
                    out.late += 1
                    continue
                w = win_l[start]
                if seen is None:
                    self.bikes[bike_id] = BikeSeen(t, [t], [keys[w]])
                    new_bikes[w] += 1
                else:
                    horizon = t - lateness
                    recent = [x for x in seen.recent if x >= horizon][-keep:]
                    recent.append(t)
                    seen.recent, seen.last_ts = recent, t
                    if keys[w] not in seen.counted:
                        seen.counted.append(keys[w])
                        new_bikes[w] += 1
                        if len(seen.counted) > trim_at:
                            self.trim(seen)
                accepted.append(start)
                continue
            if code not in disordered and (seen is None or t > seen.last_ts):  # increasing, all newer
                taken = [j for j in range(start, end) if not late_l[j]]
                out.late += end - start - len(taken)
                if not taken:
                    continue
                if seen is None:
                    seen = self.bikes[bike_id] = BikeSeen(ts_l[taken[0]])
                self._remember_newer(seen, [ts_l[j] for j in taken])
            else:
                seen, taken = self._replay(bike_id, seen, ts_l, range(start, end), late_l, out)
                if not taken:
                    continue
            counted = seen.counted  # type: ignore[union-attr]
            for j in taken:
                w = win_l[j]
                if keys[w] not in counted:
                    counted.append(keys[w])
                    new_bikes[w] += 1
            if len(counted) > trim_at:
                self.trim(seen)  # type: ignore[arg-type]
            accepted += taken
        if accepted:
            idx = order[accepted]
            out.bikes.update(bike_code if len(accepted) == n else map(batch.bike_id.__getitem__, idx.tolist()))
            self._count_windows(offset, idx, win, batch, keys, new_bikes, out)
        return out

    def trim(self, seen: BikeSeen) -> BikeSeen:
        """Drop the windows a bike can no longer count (older than its lateness horizon); returns ``seen``.

        Pure housekeeping (such windows never match again), done lazily: before persisting, and when the list
        grows long. Trimmed, the state is the same as if it were trimmed after every fix.
        """
        horizon = seen.last_ts - self.lateness_ms
        floor = horizon - horizon % MINUTE_MS
        if seen.counted and min(seen.counted)[0] < floor:
            seen.counted = [k for k in seen.counted if k[0] >= floor]
        return seen

    def bike_bytes(self, bike_id: str, partition: int) -> bytes:
        """The persisted form of one bike's state (trimmed)."""
        return self.trim(self.bikes[bike_id]).to_bytes(partition)

    def _replay(self, bike_id: str, seen: BikeSeen | None, ts: list[int], positions: range, expired: list[bool],
                out: BatchOutcome) -> tuple[BikeSeen | None, list[int]]:
        """One bike's fixes one by one (some duplicate, late or out of order); returns the accepted ones."""
        taken = []
        for j in positions:
            t = ts[j]
            if seen is not None:
                if t in seen.recent:
                    out.duplicate += 1
                    continue
                if t < seen.last_ts - self.lateness_ms:
                    out.late += 1
                    continue
            if expired[j]:
                out.late += 1
                continue
            if seen is None:
                seen = self.bikes[bike_id] = BikeSeen(t)
            self._remember(seen, t)
            taken.append(j)
        return seen, taken

    def _remember(self, seen: BikeSeen, ts: int) -> None:
        seen.last_ts = max(seen.last_ts, ts)
        horizon = seen.last_ts - self.lateness_ms
        seen.recent = [t for t in seen.recent if t >= horizon][-(self.ring - 1):]
        seen.recent.append(ts)

    def _remember_newer(self, seen: BikeSeen, taken: list[int]) -> None:
        """``_remember`` each of ``taken`` (increasing, all newer than ``seen.last_ts``), in one step if possible."""
        ring, last = self.ring, taken[-1]
        horizon = last - self.lateness_ms
        if len(taken) == 1:
            seen.recent = [t for t in seen.recent if t >= horizon][-(ring - 1):]
            seen.recent.append(last)
        elif len(taken) >= ring:  # the ring ends with these: the older fixes fall out or are past the horizon
            seen.recent = [t for t in taken[-ring:] if t >= horizon]
        elif len(seen.recent) + len(taken) <= ring:  # the ring never overflows: only the horizon trims
            seen.recent = [t for t in seen.recent + taken if t >= horizon]
        else:
            for t in taken:
                self._remember(seen, t)
        seen.last_ts = last

    def _count_windows(self, offset: int, idx: np.ndarray, win: np.ndarray, batch: FixBatch,
                       keys: list[tuple[int, str]], new_bikes: list[int], out: BatchOutcome) -> None:
        """Add the accepted fixes (``idx``, in window ``win[idx]``) to their windows.

        The offset guard is per window and message: a window that already holds this offset (or a later
        one) took all of this message's fixes before a crash; any other window takes them all now.
        """
        out.accepted += len(idx)
        self.watermark = max(self.watermark, int(batch.ts[idx].max()))
        w = win[idx]
        fixes = np.bincount(w, minlength=len(keys)).tolist()
        locked = np.bincount(w[batch.locked[idx]], minlength=len(keys)).tolist()
        for key, f, b, lk in zip(keys, fixes, new_bikes, locked, strict=True):
            if not f:
                continue
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = Window()
            elif window.last_offset >= offset:
                continue  # already counted before a restart: the bike state catches up, counts stay
            window.fixes += f
            window.bikes += b
            window.locked += lk
            window.last_offset = offset
            out.windows.add(key)

    def evict(self) -> list[tuple[int, str]]:
        """Drop windows past the horizon; returns their keys (so the caller can delete them durably)."""
        limit = self.watermark - self.horizon_ms
        gone = [k for k in self.windows if k[0] + MINUTE_MS <= limit]
        for k in gone:
            del self.windows[k]
        return gone

    def restore_bike(self, bike_id: str, seen: BikeSeen) -> None:
        """Load one bike's persisted state (after a restart)."""
        self.bikes[bike_id] = seen
        self.watermark = max(self.watermark, seen.last_ts)

    def restore_window(self, key: tuple[int, str], window: Window) -> None:
        """Load one window's persisted counts (after a restart)."""
        self.windows[key] = window
