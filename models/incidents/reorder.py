"""Put case events back into event-time order within an allowed lateness.

Events of one case can arrive out of order (a handler's app syncs late, two systems feed the same
topic). :class:`CaseBuffer` holds them until the event-time watermark has moved
``allowed_lateness_ms`` past them, then releases them sorted by
``(ts, lifecycle rank, case_id, arrival)``. The rank breaks ties between events stamped with the
same time (sources that truncate to the minute), so ``report`` comes before ``register`` at equal
ts; the case id makes the output independent of arrival order across cases. Everything is driven
by event time.
"""

from __future__ import annotations

__all__ = ["CaseBuffer", "Late"]

import heapq
from dataclasses import dataclass
from typing import Any

from models.incidents.lifecycle import RANK, event_ms


@dataclass(frozen=True, slots=True)
class Late:
    """An event that arrived after its slot had already been released; it is not applied."""

    event: dict[str, Any]
    reason: str


class CaseBuffer:
    """Reorder buffer for case events keyed by event time.

    Parameters
    ----------
    allowed_lateness_ms
        How far behind the watermark an event may be and still be put in order.

    The release frontier is ``watermark - allowed_lateness_ms``: :meth:`advance_to` releases every
    held event with ``ts < frontier``; :meth:`push` refuses (as :class:`Late`) an event with
    ``ts < frontier``, because events after it have already gone out. The watermark only moves
    forward. Events with an unreadable ``ts`` are returned as :class:`Late` too, with the reason.

    Example
    -------
    >>> b = CaseBuffer(allowed_lateness_ms=60_000)
    >>> t0 = 1795244400000
    >>> b.push({"case_id": "A", "ts": t0 + 5_000, "transition": "register"})
    >>> b.push({"case_id": "A", "ts": t0, "transition": "report"})
    >>> b.advance_to(t0 + 30_000)
    []
    >>> [e["transition"] for e in b.advance_to(t0 + 70_000)]
    ['report', 'register']
    >>> b.push({"case_id": "A", "ts": t0 + 1_000, "transition": "dispatch"}).reason
    'late by 9000 ms: ts 1795244401000 < release frontier 1795244410000 (watermark 1795244470000 - lateness 60000)'
    """

    def __init__(self, allowed_lateness_ms: int = 60_000) -> None:
        if allowed_lateness_ms < 0:
            raise ValueError("allowed_lateness_ms must be >= 0")
        self.allowed_lateness_ms = allowed_lateness_ms
        self._heap: list[tuple[int, int, str, int, dict[str, Any]]] = []
        self._seq = 0
        self._watermark: int | None = None
        self.late_count = 0

    @property
    def watermark(self) -> int | None:
        """The highest watermark seen, or ``None`` before the first :meth:`advance_to`."""
        return self._watermark

    @property
    def frontier(self) -> int | None:
        """Events with ``ts`` below this have been released (or are late)."""
        return None if self._watermark is None else self._watermark - self.allowed_lateness_ms

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, event: dict[str, Any]) -> Late | None:
        """Hold ``event`` for ordered release; return :class:`Late` if it can no longer be ordered."""
        try:
            ts = event_ms(event.get("ts"))
        except ValueError as exc:
            self.late_count += 1
            return Late(event, f"unreadable ts: {exc}")
        frontier = self.frontier
        if frontier is not None and ts < frontier:
            self.late_count += 1
            return Late(
                event,
                f"late by {frontier - ts} ms: ts {ts} < release frontier {frontier} "
                f"(watermark {self._watermark} - lateness {self.allowed_lateness_ms})",
            )
        rank = RANK.get(str(event.get("transition")), len(RANK))
        heapq.heappush(self._heap, (ts, rank, str(event.get("case_id")), self._seq, event))
        self._seq += 1
        return None

    def hold(self, event: dict[str, Any]) -> None:
        """Hold ``event`` without the lateness check (restoring held events after a restart)."""
        rank = RANK.get(str(event.get("transition")), len(RANK))
        heapq.heappush(self._heap, (event_ms(event["ts"]), rank, str(event.get("case_id")), self._seq, event))
        self._seq += 1

    def advance_to(self, watermark_ms: int) -> list[dict[str, Any]]:
        """Move the watermark forward and return the events now due, in order."""
        if self._watermark is None or watermark_ms > self._watermark:
            self._watermark = watermark_ms
        frontier = self._watermark - self.allowed_lateness_ms
        out = []
        while self._heap and self._heap[0][0] < frontier:
            out.append(heapq.heappop(self._heap)[4])
        return out

    def flush(self) -> list[dict[str, Any]]:
        """Release everything held, in order (end of a replay or shutdown).

        The watermark moves so that an event older than the last one released counts as late.
        """
        items = sorted(self._heap)
        self._heap.clear()
        if items:
            self.advance_to(items[-1][0] + 1 + self.allowed_lateness_ms)
        return [item[4] for item in items]
