"""Produce a recording into Kafka: the thin loop around the pure :func:`replay.play.schedule`.

Keys are kept, each message's timestamp is its event time, and the recorded inter-arrival timing is
preserved scaled by the speed factor (``None`` = as fast as the broker takes it). Memory stays bounded:
the recording is streamed, never loaded.
"""

from __future__ import annotations

__all__ = ["ReplayStats", "produce_recording", "make_producer", "produce_batched", "announce_end", "HEARTBEAT_FEEDS"]

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaProducer

from replay.play import Pacer, schedule
from replay.recording import RecordedMessage


@dataclass
class ReplayStats:
    """What a replay sent: messages per topic, event-time position, and the wall time it took."""

    sent: dict[str, int] = field(default_factory=dict)
    last_ts: int | None = None
    seconds: float = 0.0
    max_behind_s: float = 0.0
    #: Highest acknowledged offset per (topic, partition): consumers are caught up once past these.
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _acked(self, md: object) -> None:
        tp = (md.topic, md.partition)  # type: ignore[attr-defined]
        with self._lock:
            self.end_offsets[tp] = max(self.end_offsets.get(tp, -1), md.offset)  # type: ignore[attr-defined]

    @property
    def total(self) -> int:
        return sum(self.sent.values())


#: Feeds whose stream applies events in event-time order once its watermark passed them, and takes heartbeats
#: (``{"heartbeat": true, "ts": ...}`` on every partition) to move the watermark on a quiet partition.
HEARTBEAT_FEEDS: tuple[str, ...] = ("incident_events",)


def announce_end(bootstrap: str, feeds: Iterable[str], topic_of: Callable[[str], str], partitions: int,
                 ts_ms: int, stats: ReplayStats) -> None:
    """After a finite replay of ``feeds``: a heartbeat at ``ts_ms`` (the end of the replayed event time) on every
    partition of the topic of each of them in :data:`HEARTBEAT_FEEDS`, so its stream releases the recording's
    last events instead of waiting for later ones. Their offsets join ``stats.end_offsets``."""
    topics = [topic_of(f) for f in HEARTBEAT_FEEDS if f in set(feeds)]
    if not topics:
        return
    producer = make_producer(bootstrap)
    beat = orjson.dumps({"heartbeat": True, "ts": ts_ms})
    try:
        for topic in topics:
            for q in range(partitions):
                producer.send(topic, value=beat, partition=q, timestamp_ms=ts_ms).add_callback(stats._acked)
                stats.sent[topic] = stats.sent.get(topic, 0) + 1
        producer.flush()
    finally:
        producer.close()


def make_producer(bootstrap: str) -> KafkaProducer:
    """A producer tuned for replay: batches on loopback, acks from all in-sync replicas."""
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )


def produce_recording(
    producer: KafkaProducer | str,
    messages: Iterable[RecordedMessage],
    topic_of: Callable[[str], str],
    *,
    speed: float | None = None,
    loop_count: int | None = 1,
    progress: Callable[[ReplayStats], None] | None = None,
    progress_every: int = 2000,
    pacer: Pacer | None = None,
) -> ReplayStats:
    """Send ``messages`` (in event-time order) to ``topic_of(feed)``; returns what was sent.

    ``producer`` is a kafka-python producer, or a bootstrap address for the faster batched path
    (:func:`produce_batched`). Every message is acknowledged by the broker before this returns.
    """
    if isinstance(producer, str):
        return asyncio.run(produce_batched(
            producer, messages, topic_of, speed=speed, loop_count=loop_count, progress=progress,
            progress_every=progress_every, pacer=pacer,
        ))
    stats = ReplayStats()
    pacer = pacer or Pacer()
    started = time.perf_counter()
    n = 0
    for offset_s, msg in schedule(messages, speed, loop_count=loop_count):
        if speed is not None:
            stats.max_behind_s = max(stats.max_behind_s, pacer.sleep_until(offset_s))
        topic = topic_of(msg.feed)
        producer.send(
            topic, key=msg.key.encode() if msg.key is not None else None, value=msg.value, timestamp_ms=msg.ts,
        ).add_callback(stats._acked)
        stats.sent[topic] = stats.sent.get(topic, 0) + 1
        stats.last_ts = msg.ts
        n += 1
        if progress is not None and n % progress_every == 0:
            stats.seconds = time.perf_counter() - started
            progress(stats)
    producer.flush()
    stats.seconds = time.perf_counter() - started
    if progress is not None:
        progress(stats)
    return stats


#: Keys whose partition a replay remembers (a city's bike ids, sensor ids; case ids are new each time).
_PARTITION_CACHE = 500_000


async def produce_batched(
    bootstrap: str,
    messages: Iterable[RecordedMessage],
    topic_of: Callable[[str], str],
    *,
    speed: float | None = None,
    loop_count: int | None = 1,
    progress: Callable[[ReplayStats], None] | None = None,
    progress_every: int = 2000,
    pacer: Pacer | None = None,
    batch_records: int = 5000,
) -> ReplayStats:
    """The replay loop on aiokafka record batches: one produce call per partition batch, not per message.

    Messages go to the partition Kafka's default partitioner picks for their key (murmur2, as the Java
    client and kafka-python do), so keys land exactly where a per-message producer would put them; per-key
    order is kept. Batches are sent when full, before every wait of a paced replay, and at the end.
    """
    from aiokafka import AIOKafkaProducer

    from streams.topics import partition_for

    stats = ReplayStats()
    pacer = pacer or Pacer()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    await producer.start()
    started = time.perf_counter()
    open_batches: dict[tuple[str, int], Any] = {}
    in_flight: list[tuple[asyncio.Future[Any], str, int, int]] = []
    partitions: dict[str, int] = {}
    part_of: dict[tuple[str, bytes], int] = {}  # keys repeat (a bike's fixes): murmur2 in Python is ~6-16 us
    pending = 0
    rr = 0

    async def send(tp: tuple[str, int]) -> None:
        batch = open_batches.pop(tp)
        fut = await producer.send_batch(batch, tp[0], partition=tp[1])
        in_flight.append((fut, tp[0], tp[1], batch.record_count()))

    async def send_all() -> None:
        nonlocal pending
        for tp in list(open_batches):
            await send(tp)
        pending = 0

    try:
        n = 0
        for offset_s, msg in schedule(messages, speed, loop_count=loop_count):
            if speed is not None and offset_s > 0:
                if pending:
                    await send_all()
                stats.max_behind_s = max(stats.max_behind_s, await pacer.wait_until(offset_s))
            topic = topic_of(msg.feed)
            if topic not in partitions:
                partitions[topic] = len(await producer.partitions_for(topic))
            key = msg.key.encode() if msg.key is not None else None
            if key is not None:
                part = part_of.get((topic, key), -1)
                if part < 0:
                    part = partition_for(key, partitions[topic])
                    if len(part_of) < _PARTITION_CACHE:
                        part_of[topic, key] = part
            else:
                part, rr = rr % partitions[topic], rr + 1
            tp = (topic, part)
            batch = open_batches.get(tp) or open_batches.setdefault(tp, producer.create_batch())
            if batch.append(key=key, value=msg.value, timestamp=msg.ts) is None:  # full: send it, start another
                await send(tp)
                open_batches[tp] = producer.create_batch()
                open_batches[tp].append(key=key, value=msg.value, timestamp=msg.ts)
            pending += 1
            if pending >= batch_records:
                await send_all()
            stats.sent[topic] = stats.sent.get(topic, 0) + 1
            stats.last_ts = msg.ts
            n += 1
            if progress is not None and n % progress_every == 0:
                stats.seconds = time.perf_counter() - started
                progress(stats)
        await send_all()
        for fut, topic, part, count in in_flight:
            md = await fut
            tp = (topic, part)
            stats.end_offsets[tp] = max(stats.end_offsets.get(tp, -1), md.offset + count - 1)
    finally:
        await producer.stop()
    stats.seconds = time.perf_counter() - started
    if progress is not None:
        progress(stats)
    return stats
