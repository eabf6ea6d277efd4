"""The keyed stages' waiting items as durable entries: one entry per input message, not per item.

A keyed stage (fence occupancy, fleet counts) acks its input at once, so the items still waiting for the
watermark are state. Each message's waiting items are one changelog entry, ``g|<partition>|<offset>|<crc32>``
-> the JSON array of the items; the entry is deleted once the stage's watermark has passed all of them. After
a restart every item of a remaining entry waits again, those already applied included: the stages hold sets
of bikes, so applying an item twice changes nothing. The offset names the message; the checksum keeps a
message of a recreated topic (offsets from 0 again) from passing for one whose entry still waits. Entries of
one item each, ``q|<partition>|<item JSON>`` -> ``1`` (the format before), are still read.
"""

from __future__ import annotations

__all__ = ["WaitingMessages"]

import zlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

import orjson


class _Timed(Protocol):
    @property
    def ts(self) -> int: ...


T = TypeVar("T", bound=_Timed)
_UNSEEN = -(2**63)


class WaitingMessages(Generic[T]):
    """Which input messages of one keyed partition still have items waiting, and their changelog entries.

    Parameters
    ----------
    partition
        The keyed partition (part of every key, as the changelog is shared by all partitions).
    item
        A message item (decoded JSON) -> the stage's item, with an event time ``ts``.

    Example
    -------
    >>> from collections import namedtuple
    >>> It = namedtuple("It", "ts name")
    >>> w = WaitingMessages(0, lambda raw: It(*raw))
    >>> items, late = w.add(7, b"m7", [[5, "a"], [20, "b"]], watermark=10)  # 5 is behind the stage already
    >>> [i.name for i in items], late, w.add(7, b"m7", [[5, "a"], [20, "b"]], watermark=10)
    (['a', 'b'], 1, ([], 0))
    >>> [(k[:6], v) for k, v in w.entries(watermark=10)]  # what is still waiting after this batch
    [(b'g|0|7|', b'[[20,"b"]]')]
    >>> [(k[:6], v) for k, v in w.entries(watermark=20)]  # all of it passed: the entry goes
    [(b'g|0|7|', None)]
    """

    def __init__(self, partition: int, item: Callable[[Any], T]) -> None:
        self.partition = partition
        self.item = item
        self._newest: dict[bytes, int] = {}  # key -> newest event time of its waiting items
        self._persisted: set[bytes] = set()  # keys in the changelog
        self._fresh: list[tuple[bytes, bytes]] = []  # added since the last ``entries``: key, value

    def __len__(self) -> int:
        return len(self._newest)

    def key(self, offset: int, value: bytes) -> bytes:
        """The entry key of the message at ``offset`` with bytes ``value``."""
        return f"g|{self.partition}|{offset}|{zlib.crc32(value):08x}".encode()

    def add(self, offset: int, value: bytes, raws: Iterable[Any], watermark: int) -> tuple[list[T], int]:
        """Take a message's items; returns the items to hand to the stage (none if this message already waits:
        a re-delivery) and how many of them are behind ``watermark`` (applied at once, not kept)."""
        key = self.key(offset, value)
        if key in self._newest:
            return [], 0
        items, kept, late, newest = [], [], 0, _UNSEEN
        for raw in raws:
            it = self.item(raw)
            items.append(it)
            if it.ts <= watermark:
                late += 1
            else:
                kept.append(raw)
                newest = max(newest, it.ts)
        if kept:
            self._newest[key] = newest
            self._fresh.append((key, orjson.dumps(kept)))
        return items, late

    def entries(self, watermark: int) -> list[tuple[bytes, bytes | None]]:
        """Forget the messages whose items ``watermark`` has passed; returns the changelog writes, in order:
        deletes of those that were persisted, then the entries of the messages added since the last call that
        still wait."""
        done = [k for k, newest in self._newest.items() if newest <= watermark]
        for k in done:
            del self._newest[k]
        out: list[tuple[bytes, bytes | None]] = [(k, None) for k in done if k in self._persisted]
        self._persisted.difference_update(done)
        keep = [(k, v) for k, v in self._fresh if k in self._newest]
        self._fresh = []
        out += keep
        self._persisted.update(k for k, _ in keep)
        return out

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> list[T]:
        """Load this partition's entries from the changelog; returns every item they hold (to wait again).

        >>> from collections import namedtuple
        >>> It = namedtuple("It", "ts name")
        >>> w = WaitingMessages(1, lambda raw: It(*raw))
        >>> [i.name for i in w.restore([(b"g|1|3|00000000", b'[[20,"b"],[30,"c"]]'), (b'q|1|[40,"d"]', b"1"),
        ...                             (b"g|2|3|00000000", b'[[50,"x"]]')])], len(w)
        (['b', 'c', 'd'], 2)
        >>> [k for k, v in w.entries(watermark=35)]  # the restored entries are deleted once passed
        [b'g|1|3|00000000']
        """
        group, single = f"g|{self.partition}|".encode(), f"q|{self.partition}|".encode()
        held: list[T] = []
        for k, v in entries:
            if k.startswith(group):
                items = [self.item(raw) for raw in orjson.loads(v)]
            elif k.startswith(single):
                items = [self.item(orjson.loads(k[len(single):]))]
            else:
                continue
            held += items
            self._newest[k] = max((it.ts for it in items), default=_UNSEEN)
            self._persisted.add(k)
        return held
