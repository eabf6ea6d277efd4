"""Send many small records to a topic as a few record batches (the incident agents' outputs).

A Faust ``Topic.send`` per record pays Faust's per-message machinery, and aiokafka lets one 16 KiB batch per
partition be in flight, so thousands of small rows per agent batch queue up behind broker round trips.
Here records are appended to record batches per partition (keyed records go where Kafka's default
partitioner puts them, murmur2 as in ``streams.topics.partition_for``) and handed to the aiokafka producer
under Faust's, as ``streams.state.send_entries`` does for state. Per partition, records keep their order.
"""

from __future__ import annotations

__all__ = ["Record", "send_records"]

from typing import Any

from streams.app import Pipeline
from streams.topics import partition_for

#: (partition or None to pick by key, key, value, timestamp in epoch ms)
Record = tuple[int | None, bytes | None, bytes, int]


async def send_records(pipe: Pipeline, short: str, records: list[Record]) -> list[Any]:
    """Hand ``records`` for topic ``short`` to the producer; returns the delivery futures (await them)."""
    if not records:
        return []
    producer = pipe.app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer under Faust
    topic = pipe.settings.topic(short)
    n = pipe.settings.partitions
    batches: dict[int, Any] = {}
    futures = []
    for p, key, value, ts in records:
        if p is None:
            p = partition_for(key or b"", n)
        batch = batches.get(p)
        if batch is None:
            batch = batches[p] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=ts) is None:  # full: send it, start the next one
            futures.append(await producer.send_batch(batch, topic, partition=p))
            batch = batches[p] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=ts)
    for p, batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=p))
    pipe.metrics.records_out.labels(topic=topic).inc(len(records))
    return futures
