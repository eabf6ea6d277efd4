"""Stage 1 of the bike flow: decode and validate GPS messages, dead-letter bad fixes, and re-batch the good
ones per target partition of their bike, so per-bike state downstream stays partition-local."""

from __future__ import annotations

__all__ = ["register", "split_by_partition"]

import asyncio
import time

import numpy as np
from faust.types import StreamT

from models.gps import FixBatch, decode_gps
from streams.app import Pipeline
from streams.deadletters import send_dead_letters
from streams.topics import partition_for


def split_by_partition(batch: FixBatch, partitions: int) -> dict[int, FixBatch]:
    """Group fixes by the partition their bike id hashes to, keeping order within a group."""
    of_bike = {b: partition_for(b.encode(), partitions) for b in set(batch.bike_id)}
    target = np.fromiter((of_bike[b] for b in batch.bike_id), dtype=np.int64, count=len(batch))
    return {int(p): batch.take(np.flatnonzero(target == p)) for p in np.unique(target)}


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
            decoded = [(ev, *decode_gps(ev.value)) for ev in events]
            good = FixBatch.concat([ok for _, ok, _ in decoded])
            futures = await send_dead_letters(pipe, ((ev, d) for ev, _, bad in decoded for d in bad))
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
