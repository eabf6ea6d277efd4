"""Per-minute, per-zone counts of distinct GPS fixes, exact under replays, retries and restarts.

One :class:`ZoneMinuteCounter` serves one partition of the (bike-keyed) fixes topic. Two kinds of
state make the counts exact without broker transactions:

- per bike (:class:`BikeSeen`): the event times of its recent accepted fixes. A fix seen before (the same
  bike and ``ts``: a replayed recording, an operator resend) is a *duplicate*; a fix older than the bike's
  newest fix minus the allowed lateness is *late*. Both are counted, neither is aggregated. The decision
  depends only on the bike's own fix order, so it is the same at any replay speed.
- per window (:class:`Window`, one per minute and zone): the counts and the offset of the last message
  that changed them. A message re-delivered after a crash (offset <= ``last_offset``) does not count twice.

The caller persists the changed state (window first, then bike: see ``docs/architecture.md``) and emits one
upsert row per touched window, versioned by ``last_offset``.
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
    """What a counter remembers of one bike: newest fix, recent fixes, recently counted windows."""

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

    def process(self, offset: int, batch: FixBatch, zones: np.ndarray) -> BatchOutcome:
        """Apply the fixes of the message at ``offset`` (in message order) and report what changed."""
        out = BatchOutcome()
        # Windows already changed by this very offset before a crash must not count again; windows first
        # touched in this call may take several fixes of the same message.
        fresh: set[tuple[int, str]] = set()
        lateness, expired_before = self.lateness_ms, self.watermark - self.horizon_ms
        for bike_id, ts, zone, locked in zip(batch.bike_id, batch.ts.tolist(), zones.tolist(),
                                             batch.locked.tolist(), strict=True):
            seen = self.bikes.get(bike_id)
            minute = ts - ts % MINUTE_MS
            if seen is not None:
                if ts in seen.recent:
                    out.duplicate += 1
                    continue
                if ts < seen.last_ts - lateness:
                    out.late += 1
                    continue
            if minute + MINUTE_MS <= expired_before:
                out.late += 1
                continue
            if seen is None:
                seen = self.bikes[bike_id] = BikeSeen(ts)
            self._remember(seen, ts)
            key = (minute, zone)
            new_bike = key not in seen.counted
            if new_bike:
                seen.counted.append(key)
            out.bikes.add(bike_id)
            out.accepted += 1
            self.watermark = max(self.watermark, ts)
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = Window()
            if window.last_offset >= offset and key not in fresh:
                continue  # already counted before a restart: the bike state catches up, counts stay
            fresh.add(key)
            window.fixes += 1
            window.bikes += new_bike
            window.locked += locked
            window.last_offset = offset
            out.windows.add(key)
        return out

    def _remember(self, seen: BikeSeen, ts: int) -> None:
        seen.last_ts = max(seen.last_ts, ts)
        horizon = seen.last_ts - self.lateness_ms
        seen.recent = [t for t in seen.recent if t >= horizon][-(self.ring - 1):]
        seen.recent.append(ts)
        floor = horizon - horizon % MINUTE_MS
        seen.counted = [k for k in seen.counted if k[0] >= floor]

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
