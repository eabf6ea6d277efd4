"""Stage 1 of the bike flow: decode and validate GPS messages, dead-letter bad fixes, and re-batch the good
ones per target partition of their bike, so per-bike state downstream stays partition-local."""

from __future__ import annotations

__all__ = ["register", "split_by_partition"]

import asyncio
import time

import numpy as np
from faust.types import StreamT

from models.gps import FixBatch, decode_gps_many
from streams.app import Pipeline
from streams.deadletters import send_dead_letters
from streams.topics import partition_for

#: Partition of each bike id seen, per partition count: murmur2 in pure Python costs ~6 us a key, and a
#: city's bike ids repeat all day (150,000 ids: ~20 MB).
_PARTITION_OF: dict[int, dict[str, int]] = {}


def split_by_partition(batch: FixBatch, partitions: int) -> dict[int, FixBatch]:
    """Group fixes by the partition their bike id hashes to, keeping order within a group."""
    known = _PARTITION_OF.setdefault(partitions, {})
    for b in set(batch.bike_id).difference(known):
        known[b] = partition_for(b.encode(), partitions)
    target = np.fromiter(map(known.__getitem__, batch.bike_id), dtype=np.int64, count=len(batch))
    order = np.argsort(target, kind="stable")
    cuts = np.flatnonzero(np.diff(target[order])) + 1
    return {int(target[part[0]]): batch.take(part) for part in np.split(order, cuts) if len(part)}


def register(pipe: Pipeline) -> None:
    if not pipe.runs_streams:
        return
    s = pipe.settings
    source, fixes_topic = pipe.topic("bike.gps"), pipe.topic("bike.fixes")
    m_in = pipe.metrics.records_in.labels(topic=source.get_topic_name())
    m_out = pipe.metrics.records_out.labels(topic=fixes_topic.get_topic_name())
    m_lag = pipe.metrics.event_time_lag.labels(topic=source.get_topic_name())

    @pipe.app.agent(source, name="validate_fixes")
    async def validate_fixes(stream: StreamT) -> None:
        async for events in stream.noack_take(s.batch_size, within=s.batch_within_s):
            good, bad = decode_gps_many([ev.value for ev in events])  # one batch for all the messages
            futures = await send_dead_letters(pipe, ((events[i], d) for i, d in bad))
            for p, part in split_by_partition(good, s.partitions).items():
                futures.append(await fixes_topic.send(
                    value=part.to_json(), partition=p, timestamp=float(part.ts.max()) / 1000, force=True,
                ))
                m_out.inc()
            await asyncio.gather(*futures)  # delivered before the source offsets may commit
            for ev in events:
                await stream.ack(ev)
            m_in.inc(len(events))
            if len(good):
                m_lag.set(time.time() - float(good.ts.max()) / 1000)  # wall clock: a metric, not logic
