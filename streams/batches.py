"""Send many small records as a few Kafka record batches, straight through the aiokafka producer under Faust's.

A Faust ``Topic.send`` per record pays Faust's per-message machinery (~30-50 us of Python), and aiokafka lets
one batch per partition be in flight, so thousands of small rows or state entries per agent batch queue up
behind broker round trips: one per batch, which is why batches are ``CITYSTREAM_PRODUCER_BATCH_BYTES`` (256 KiB)
rather than Faust's 16 KiB. Here records are appended to record batches per partition and handed to the
producer; per partition, records keep their order, after anything sent before (the producer queues batches
behind earlier records). Used for agent outputs (:func:`send_records`) and for state
(``streams.state.send_entries``).
"""

from __future__ import annotations

__all__ = ["Record", "send_batches", "send_records"]

from collections.abc import Iterable
from typing import Any

from streams.app import Pipeline
from streams.topics import partition_for

#: (partition or None to pick by key, key, value, timestamp in epoch ms)
Record = tuple[int | None, bytes | None, bytes, int]


async def send_batches(producer: Any, topic: str,
                       records: Iterable[tuple[int, bytes | None, bytes | None, int | None]]) -> list[Any]:
    """Append ``(partition, key, value, timestamp ms)`` records to record batches of ``topic`` and send them;
    returns the delivery futures (await them)."""
    batches: dict[int, Any] = {}
    futures = []
    for p, key, value, ts in records:
        batch = batches.get(p)
        if batch is None:
            batch = batches[p] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=ts) is None:  # full: send it, start the next one
            futures.append(await producer.send_batch(batch, topic, partition=p))
            batch = batches[p] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=ts)
    for p, batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=p))
    return futures


async def send_records(pipe: Pipeline, short: str, records: list[Record]) -> list[Any]:
    """Hand ``records`` for topic ``short`` to the producer; returns the delivery futures (await them).

    A record without a partition goes where Kafka's default partitioner puts its key (murmur2, as
    ``streams.topics.partition_for``)."""
    if not records:
        return []
    producer = pipe.app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer under Faust
    topic = pipe.settings.topic(short)
    n = pipe.settings.partitions
    futures = await send_batches(producer, topic, (
        (partition_for(key or b"", n) if p is None else p, key, value, ts) for p, key, value, ts in records))
    pipe.metrics.records_out.labels(topic=topic).inc(len(records))
    return futures
