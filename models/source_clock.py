"""Event time of a partition fed by several upstream sources (the partitions of the topic read before it).

A stage that re-partitions (the GPS ingest: operator batches in, one partition per bike out) writes each
output partition from every input partition it holds, and with several workers from several processes at
their own pace. An output partition's event time taken from the fixes it happened to receive first would run
ahead of a source that is behind (a slower worker, a rebalance, a catch-up), and that source's fixes would
then arrive *behind the watermark*, after timers that already fired: rows would depend on timing.

Each upstream batch therefore carries a *mark* per source it holds: the newest timestamp handed over from
that source so far, and whether the source is *idle* (read to its end: nothing fetched and held, nothing
unread). A partition's event time is the minimum over the sources that are not idle, so no source's fixes
fall behind it (only its own disorder beyond the allowed lateness can). A source read to its end holds
nobody back, so a live partition never waits for a silent one; when every source is idle (the end of a
replay), the event time is the newest mark. A source never heard of holds the clock (it may not have
started yet) until ``idle_after_s`` of wall time passed without a mark from it, as for any silent source:
the one place wall time enters, and only when a source stalls that long.

Example
-------
>>> c = SourceClock(sources=2, idle_after_s=300)
>>> c.update([(0, 1_000, False)], now=0.0)
>>> c.time(now=1.0) is None  # source 1 not heard of yet: wait for it
True
>>> c.update([(1, 400, False)], now=1.0)
>>> c.time(now=1.0)
400
>>> c.update([(1, 900, True)], now=2.0)  # source 1 read to its end: source 0 alone decides
>>> c.time(now=2.0)
1000
>>> c.update([(0, 1_200, True)], now=3.0)  # every source idle: the newest mark
>>> c.time(now=3.0), SourceClock.from_bytes(c.to_bytes(), 2, 300).time(now=3.0)
(1200, 1200)
"""

from __future__ import annotations

__all__ = ["Mark", "SourceClock"]

from collections.abc import Iterable

import orjson

#: ``(source, newest timestamp handed over or None if nothing yet, idle)``.
Mark = tuple[int, int | None, bool]


class SourceClock:
    """Per-source marks of one partition and the event time they allow (see the module docstring)."""

    __slots__ = ("sources", "idle_after_s", "newest", "idle", "heard", "born")

    def __init__(self, sources: int, idle_after_s: float, born: float = 0.0) -> None:
        self.sources = sources
        self.idle_after_s = idle_after_s
        self.newest: dict[int, int] = {}  # source -> newest timestamp it handed over (never goes back)
        self.idle: dict[int, bool] = {}  # source -> read to its end at its last mark
        self.heard: dict[int, float] = {}  # source -> wall clock of its last mark (not persisted)
        self.born = born  # wall clock from which an unheard source counts as silent

    def update(self, marks: Iterable[Mark], now: float) -> None:
        """Take the marks of one upstream message (in the order the messages arrive)."""
        for src, newest, idle in marks:
            if not 0 <= src < self.sources:
                continue  # a source beyond the configured count (topic grown): ignored, never trusted
            if newest is not None and newest > self.newest.get(src, newest - 1):
                self.newest[src] = newest
            self.idle[src] = bool(idle)
            self.heard[src] = now

    def holding(self, now: float) -> list[int]:
        """The sources that hold the clock: not read to their end, and heard of within ``idle_after_s``
        (never heard of: since ``born``)."""
        return [src for src in range(self.sources)
                if not self.idle.get(src, False) and now - self.heard.get(src, self.born) <= self.idle_after_s]

    def time(self, now: float) -> int | None:
        """The partition's event time: no fix at or before it is still expected from a source that is not
        idle; None while a source that holds the clock has handed nothing over yet."""
        holding = self.holding(now)
        if holding:
            marks = [self.newest.get(src) for src in holding]
            return None if None in marks else min(v for v in marks if v is not None)
        return max(self.newest.values()) if self.newest else None

    def waiting(self, now: float) -> list[int]:
        """The sources that hold the clock (see :meth:`time`) without having handed anything over: why a
        partition's event time does not move (a worker that has not started reading, or a silent one)."""
        return [src for src in self.holding(now) if src not in self.newest]

    def to_bytes(self) -> bytes:
        """The marks (not the wall clocks) as a state entry."""
        return orjson.dumps({"newest": {str(k): v for k, v in sorted(self.newest.items())},
                             "idle": sorted(k for k, v in self.idle.items() if v)})

    @classmethod
    def from_bytes(cls, data: bytes, sources: int, idle_after_s: float, born: float = 0.0) -> SourceClock:
        """Inverse of :meth:`to_bytes`; every source restored counts as heard of at ``born``."""
        d = orjson.loads(data)
        clock = cls(sources, idle_after_s, born)
        clock.newest = {int(k): int(v) for k, v in d["newest"].items()}
        clock.idle = {int(k): True for k in d["idle"]}
        for src in (*clock.newest, *clock.idle):
            clock.heard[src] = born
            clock.idle.setdefault(src, False)
        return clock
