"""What an ingest hands over: its records as plain tuples (:data:`Record`), a fetched batch with the partitions
interleaved by timestamp (:class:`Batch`), and the event-time alignment of what it holds (:func:`release`). The
consumer that uses them is :class:`streams.ingest.BatchIngest` (its module docstring says why).
"""

from __future__ import annotations

__all__ = ["ALIGN_WAIT_S", "Batch", "Record", "RecordSource", "as_records", "release"]

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
from aiokafka.structs import TopicPartition

#: One record as the ingest keeps it: ``(offset, timestamp ms, key, value)``.
Record = tuple[int, int, bytes | None, bytes | None]

_timestamp, _value = itemgetter(1), itemgetter(3)

def as_records(batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, list[Record]]:
    """``getmany``'s ConsumerRecords as :data:`Record` tuples."""
    return {tp: [(r.offset, r.timestamp, r.key, r.value) for r in recs] for tp, recs in batch.items()}


class RecordSource(NamedTuple):
    """Where a record of a :class:`Batch` came from (``timestamp`` in ms), e.g. for its dead letter."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp: int


class Batch:
    """The records of one ``getmany`` (:data:`Record` tuples per partition), partitions interleaved by record
    timestamp, each partition's own order kept: the order ``heapq.merge`` of the partitions (in the order
    given) by timestamp gives them.

    Example
    -------
    >>> b = Batch({TopicPartition("t", 0): [(5, 10, None, b"a"), (6, 30, None, b"c")],
    ...            TopicPartition("t", 1): [(0, 20, b"k", b"b")]})
    >>> b.values(), b.source(1)
    ([b'a', b'b', b'c'], RecordSource(topic='t', partition=1, offset=0, key=b'k', timestamp=20))
    """

    __slots__ = ("records", "idle", "_partitions", "_of")

    def __init__(self, by_partition: dict[TopicPartition, list[Record]], idle: dict[int, bool] | None = None) -> None:
        #: Per partition the ingest holds: True when it is read to its end after this batch (nothing held back,
        #: nothing unread), i.e. it holds back no stage behind (see ``models/source_clock.py``).
        self.idle: dict[int, bool] = idle or {}
        self._partitions = list(by_partition)
        self._of: np.ndarray | None = None  # position in records -> index in _partitions (None: all the first)
        parts = list(by_partition.values())
        if len(parts) <= 1:  # one partition, or none (a batch of marks only)
            self.records: Sequence[Record] = parts[0] if parts else []
            return
        source = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        flat = [r for p in parts for r in p]
        try:
            # heapq.merge takes the smallest head first: the same as a stable sort of the partitions, one after
            # the other, on each record's running maximum of timestamps within its partition (vectorized).
            keys = np.concatenate([np.maximum.accumulate(np.fromiter(map(_timestamp, p), np.int64, len(p)))
                                   for p in parts])
            order = np.argsort(keys, kind="stable").tolist()
        except TypeError:  # a record without a timestamp (message format v0): partition after partition
            order = list(range(len(flat)))
        self.records = itemgetter(*order)(flat) if len(order) > 1 else [flat[i] for i in order]
        self._of = source[order]

    def __len__(self) -> int:
        return len(self.records)

    def values(self) -> list[bytes | None]:
        """The record values, in order."""
        return list(map(_value, self.records))

    def timestamps(self) -> np.ndarray:
        """The record timestamps (epoch ms, int64), in order; -1 where a record has none."""
        try:
            return np.fromiter(map(_timestamp, self.records), np.int64, len(self.records))
        except TypeError:  # a record without a timestamp (message format v0)
            return np.fromiter((-1 if t is None else t for t in map(_timestamp, self.records)), np.int64,
                               len(self.records))

    def partitions(self, index: np.ndarray) -> np.ndarray:
        """The partition number of the records at ``index`` (positions in :attr:`records`)."""
        numbers = np.array([tp.partition for tp in self._partitions], np.int64)
        return numbers[np.zeros(len(index), np.int64) if self._of is None else self._of[index]]

    def source(self, i: int) -> RecordSource:
        """Where ``records[i]`` came from."""
        offset, timestamp, key, _ = self.records[i]
        tp = self._partitions[0 if self._of is None else int(self._of[i])]
        return RecordSource(tp.topic, tp.partition, offset, key, timestamp)


#: The longest a fetched batch waits (wall seconds) for partitions with unread records not fetched yet.
ALIGN_WAIT_S = 2.0


def release(pending: dict[Any, list[Record]]) -> tuple[dict[Any, list[Record]], int | None]:
    """Split held records: per partition, the prefix whose running maximum timestamp is at most the cutoff,
    the smallest newest (running maximum) timestamp among the partitions with records. Returns what to hand
    over now (the cutoff partition gives all its records) and the cutoff; ``pending`` keeps the rest.

    Example
    -------
    >>> held = {"a": [(0, 10, None, b""), (1, 30, None, b"")], "b": [(0, 20, None, b""), (1, 40, None, b"")]}
    >>> out, cutoff = release(held)
    >>> cutoff, {tp: [r[0] for r in rs] for tp, rs in out.items()}, {tp: [r[0] for r in rs] for tp, rs in held.items()}
    (30, {'a': [0, 1], 'b': [0]}, {'a': [], 'b': [1]})
    """
    newest = {tp: max(map(_timestamp, recs)) for tp, recs in pending.items() if recs}
    if not newest:
        return {}, None
    cutoff = min(newest.values())
    out: dict[Any, list[Record]] = {}
    for tp, recs in pending.items():
        if not recs:
            continue
        if newest[tp] <= cutoff:
            out[tp], pending[tp] = recs, []
            continue
        top = np.maximum.accumulate(np.fromiter(map(_timestamp, recs), np.int64, len(recs)))
        n = int(np.searchsorted(top, cutoff, side="right"))
        if n:
            out[tp], pending[tp] = recs[:n], recs[n:]
    return out, cutoff
