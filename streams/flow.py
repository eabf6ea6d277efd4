"""Backpressure from the bike supervisor to the GPS ingest in one worker.

The ingest reads ``bike.gps`` far faster than the stages behind it work through ``bike.fixes`` (a plain
consumer decoding whole batches against Faust agents with state). Without a bound, a worker catching up on a
long backlog (after an outage) would move the backlog from Kafka into its own memory: Faust's stream buffers
count messages, and a ``bike.fixes`` message holds up to 4,000 fixes.

:class:`FixFlow` counts, per ``bike.fixes`` partition, the fixes the ingest sent and the fixes
``supervise_bikes`` (the heaviest stage) finished in this worker. Before each batch the ingest waits while
the fixes in between, over the partitions this worker's agents hold, exceed ``CITYSTREAM_INGEST_MAX_BACKLOG``.
Fixes sent to partitions another worker holds do not count (their memory is not ours). The wait is never a
deadlock: it ends as soon as the supervisor has made no progress for ``stall_s`` (revoked, stuck, crashed:
the ingest then goes on unthrottled, as before), and a partition's counts start afresh when it is revoked.
"""

from __future__ import annotations

__all__ = ["FixFlow", "fix_flow"]

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any


class FixFlow:
    """Fixes sent and finished per partition, and the wait of the sender.

    Example
    -------
    >>> flow = FixFlow(limit=100)
    >>> flow.sent(0, 80); flow.sent(1, 50); flow.done(0, 30)
    >>> flow.backlog({0, 1}), flow.backlog({0})  # partition 1 is another worker's: not counted
    (100, 50)
    >>> flow.over({0, 1}), flow.over({0})
    (False, False)
    >>> flow.sent(0, 60); flow.over({0})
    True
    >>> flow.forget([0]); flow.backlog({0, 1})
    50
    """

    def __init__(self, limit: int, stall_s: float = 30.0) -> None:
        self.limit = limit
        self.stall_s = stall_s
        self._sent: dict[int, int] = defaultdict(int)
        self._done: dict[int, int] = defaultdict(int)
        self.last_progress = time.monotonic()
        self.waited_s = 0.0  # total time the sender waited (a metric)

    def sent(self, partition: int, fixes: int) -> None:
        self._sent[partition] += fixes

    def done(self, partition: int, fixes: int) -> None:
        self._done[partition] += fixes
        self.last_progress = time.monotonic()

    def forget(self, partitions: Iterable[int]) -> None:
        """Start the counts of ``partitions`` afresh (revoked: what was sent there is another worker's now)."""
        for p in partitions:
            self._sent.pop(p, None)
            self._done.pop(p, None)

    def backlog(self, mine: Iterable[int]) -> int:
        """Fixes sent to partitions in ``mine`` and not finished yet."""
        return sum(max(0, self._sent.get(p, 0) - self._done.get(p, 0)) for p in mine)

    def over(self, mine: Iterable[int]) -> bool:
        return self.backlog(mine) > self.limit

    async def wait(self, mine: Callable[[], set[int]], poll_s: float = 0.02) -> None:
        """Return once the backlog over ``mine()`` is at most the limit, or the supervisor made no progress
        for ``stall_s`` seconds."""
        if not self.over(mine()):
            return
        start = time.monotonic()
        self.last_progress = max(self.last_progress, start - self.stall_s / 2)  # a stale mark is no stall
        while self.over(mine()) and time.monotonic() - self.last_progress < self.stall_s:
            await asyncio.sleep(poll_s)
        self.waited_s += time.monotonic() - start


def fix_flow(pipe: Any) -> FixFlow:
    """The pipeline's flow (one per worker, shared by the ingest and the supervisor)."""
    flow = pipe.state.get("fix_flow")
    if flow is None:
        flow = pipe.state["fix_flow"] = FixFlow(pipe.settings.ingest_max_backlog)
    return flow
