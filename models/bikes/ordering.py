"""Event-time ordering for the downstream keyed stages, whose inputs interleave several partitions.

Items wait until the watermark passes their timestamp, then leave sorted by a total key, so the
result does not depend on how partitions interleaved. An item already behind the watermark when it
arrives is *late*: it leaves at once (its information still counts) and is counted.
"""

from __future__ import annotations

__all__ = ["EventTimeBuffer"]

import heapq
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_UNSEEN = -(2**63)


class EventTimeBuffer(Generic[T]):
    """Hold items until event time passes them.

    Parameters
    ----------
    key
        Total order of items; its first element must be the event time (epoch ms).
    allowed_lateness_ms
        The watermark trails the newest timestamp seen by this much (unless ``advance_to`` moves
        it further).

    Example
    -------
    >>> buf = EventTimeBuffer(key=lambda x: x, allowed_lateness_ms=10)
    >>> buf.push([(30, "b"), (25, "a")])
    []
    >>> buf.push([(45, "c")])  # watermark 35
    [(25, 'a'), (30, 'b')]
    >>> buf.push([(20, "z")]), buf.late
    ([(20, 'z')], 1)
    """

    def __init__(self, key: Callable[[T], tuple[Any, ...]], allowed_lateness_ms: int = 60_000) -> None:
        self.key = key
        self.allowed_lateness_ms = allowed_lateness_ms
        self.watermark = _UNSEEN
        self.max_seen = _UNSEEN
        self.late = 0
        self._heap: list[tuple[tuple[Any, ...], int, T]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def items(self) -> list[T]:
        """The waiting items, in release order (for snapshots)."""
        return [item for _, _, item in sorted(self._heap, key=lambda e: (e[0], e[1]))]

    def hold(self, items: Iterable[T]) -> None:
        """Add items without releasing anything (restoring a snapshot's waiting items)."""
        for item in items:
            heapq.heappush(self._heap, (self.key(item), self._seq, item))
            self._seq += 1

    def push(self, items: Iterable[T]) -> list[T]:
        """Add items; return the ones now released (late ones first, then in key order)."""
        late: list[T] = []
        for item in items:
            k = self.key(item)
            if k[0] <= self.watermark:
                self.late += 1
                late.append(item)
                continue
            self.max_seen = max(self.max_seen, k[0])
            heapq.heappush(self._heap, (k, self._seq, item))
            self._seq += 1
        return late + self.advance_to(self.max_seen - self.allowed_lateness_ms)

    def advance_to(self, watermark: int) -> list[T]:
        """Release every item with a timestamp at or before ``watermark``, in key order."""
        self.watermark = max(self.watermark, watermark)
        out: list[T] = []
        while self._heap and self._heap[0][0][0] <= self.watermark:
            out.append(heapq.heappop(self._heap)[2])
        return out
