"""Capture live topics into a recording: the thin consumer loop around :class:`replay.recording.RecordingWriter`.

Keys, values (exact bytes) and message timestamps (the event time, when producers set it as citystream's
replay does) are kept; per-partition order is kept, so per-key order is too.
"""

from __future__ import annotations

__all__ = ["record_topics", "RecordStats"]

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from replay.recording import RecordingWriter


@dataclass
class RecordStats:
    """Messages captured per feed, and for how long."""

    records: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.records.values())


def record_topics(
    bootstrap: str, feeds: dict[str, str], out: Path, *, from_beginning: bool = False,
    duration_s: float | None = None, max_records: int | None = None, idle_stop_s: float | None = None,
    progress: Callable[[RecordStats], None] | None = None, should_stop: Callable[[], bool] = lambda: False,
    overwrite: bool = False,
) -> RecordStats:
    """Record ``feeds`` (feed name -> topic) into ``out`` until a limit is reached.

    Limits: ``duration_s`` of wall time, ``max_records`` messages, ``idle_stop_s`` without a new message
    (useful with ``from_beginning`` to capture what a topic holds), or ``should_stop()`` (Ctrl-C).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    topic_feed = {t: f for f, t in feeds.items()}
    parts = [TopicPartition(t, p) for t in feeds.values() for p in sorted(consumer.partitions_for_topic(t) or ())]
    if not parts:
        consumer.close()
        raise ValueError(f"none of the topics exist: {', '.join(feeds.values())}")
    consumer.assign(parts)
    if from_beginning:
        consumer.seek_to_beginning(*parts)
    else:
        consumer.seek_to_end(*parts)
    stats = RecordStats()
    started = last_msg = time.monotonic()
    with RecordingWriter(out, source=f"record {','.join(feeds.values())} from {bootstrap}", overwrite=overwrite) as w:
        while not should_stop():
            now = time.monotonic()
            if duration_s is not None and now - started >= duration_s:
                break
            if idle_stop_s is not None and now - last_msg >= idle_stop_s:
                break
            if max_records is not None and stats.total >= max_records:
                break
            batch = consumer.poll(timeout_ms=200, max_records=5000)
            for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
                for m in batch[tp]:
                    if max_records is not None and stats.total >= max_records:
                        break
                    feed = topic_feed[tp.topic]
                    w.add(feed, m.key.decode("utf-8", "replace") if m.key is not None else None, m.timestamp, m.value or b"")
                    stats.records[feed] = stats.records.get(feed, 0) + 1
                    last_msg = time.monotonic()
            if progress is not None:
                stats.seconds = time.monotonic() - started
                progress(stats)
        w.meta["recorded_from"] = bootstrap
    consumer.close()
    stats.seconds = time.monotonic() - started
    return stats
