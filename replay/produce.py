"""Produce a recording into Kafka: the thin loop around the pure :func:`replay.play.schedule`.

Keys are kept, each message's timestamp is its event time, and the recorded inter-arrival timing is
preserved scaled by the speed factor (``None`` = as fast as the broker takes it). Memory stays bounded:
the recording is streamed, never loaded.
"""

from __future__ import annotations

__all__ = ["ReplayStats", "produce_recording", "make_producer"]

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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


def make_producer(bootstrap: str) -> KafkaProducer:
    """A producer tuned for replay: batches on loopback, acks from all in-sync replicas."""
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )


def produce_recording(
    producer: KafkaProducer,
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

    The producer is flushed before returning, so every message is acknowledged by the broker.
    """
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
