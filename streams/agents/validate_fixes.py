"""Stage 1 of the bike flow: decode and validate GPS messages, dead-letter bad fixes, and re-batch the good
ones per target partition of their bike, so per-bike state downstream stays partition-local.

Each batch also tells every ``bike.fixes`` partition how far each source (``bike.gps`` partition) it read got:
the last message of the batch to a partition (an empty one if it had no fixes there) carries ``src``, a mark
``[source, newest fix ts handed over, read to its end]`` per ``bike.gps`` partition this worker holds. The
supervisor's event time is the minimum over sources (``models/source_clock.py``), so with several workers
reading ``bike.gps`` at their own pace no source's fixes fall behind it.

``bike.gps`` is read by a :class:`~streams.ingest.BatchIngest` (a plain aiokafka consumer in the group
``<app_id>-<role>-ingest``), not a Faust agent: a feed of one fix per message would otherwise spend ~90% of
the worker's CPU in Faust's per-message path. Each batch of messages is decoded at once, sent on as at most a
few columnar messages per partition, delivered, and only then committed."""

from __future__ import annotations

__all__ = ["partition_chunks", "register", "split_by_partition"]

import asyncio
import time

import numpy as np

from models.codes import codes_of
from models.fix_messages import encode_fixes
from models.gps import FixBatch, decode_gps_origins
from models.timefmt import message_limits
from streams.app import Pipeline
from streams.deadletters import send_record_dead_letters
from streams.flow import fix_flow
from streams.ingest import Batch, BatchIngest
from streams.topics import partitions_for

#: Partition of each bike id seen, per partition count: a city's bike ids repeat all day (150,000 ids: ~20 MB),
#: and new ones are hashed a batch at a time (``partitions_for``: ~0.5 us a key, kafka-python's murmur2 ~6-16).
_PARTITION_OF: dict[int, dict[str, int]] = {}

#: Fixes per message on ``bike.fixes`` (~66 B each in ``models.fix_messages``' binary columns with 32-character
#: ids, ~120 B with the longest ASCII ids and operators allowed): under the 1 MB message limit.
MAX_FIXES_PER_MESSAGE = 4000


def split_by_partition(batch: FixBatch, partitions: int) -> dict[int, FixBatch]:
    """Group fixes by the partition their bike id hashes to, keeping order within a group."""
    return {p: batch.take(idx) for p, idx in _partition_index(batch, partitions)}


def partition_chunks(batch: FixBatch, partitions: int, size: int = MAX_FIXES_PER_MESSAGE) -> list[tuple[int, FixBatch]]:
    """:func:`split_by_partition`, each group cut into chunks of at most ``size`` fixes (in order)."""
    out = []
    for p, idx in _partition_index(batch, partitions):
        if len(idx) == len(batch) and len(idx) <= size:  # one partition gets everything: no copy
            out.append((p, batch))
            continue
        out += [(p, batch.take(idx[i:i + size])) for i in range(0, len(idx), size)]
    return out


def _partition_index(batch: FixBatch, partitions: int) -> list[tuple[int, np.ndarray]]:
    """Per target partition (ascending), the positions of its fixes in ``batch`` (ascending)."""
    if not len(batch):
        return []
    known = _PARTITION_OF.setdefault(partitions, {})
    target = codes_of(known, batch.bike_id, add_many=lambda new: known.update(
        zip(new, partitions_for([b.encode() for b in new], partitions).tolist(), strict=True)))
    order = np.argsort(target.astype(np.uint16 if partitions <= 1 << 16 else np.int64), kind="stable")
    cuts = np.flatnonzero(np.diff(target[order])) + 1
    return [(int(target[part[0]]), part) for part in np.split(order, cuts)]


def register(pipe: Pipeline) -> None:
    if not pipe.runs_streams:
        return
    s = pipe.settings
    source, fixes_topic = s.topic("bike.gps"), pipe.topic("bike.fixes")
    m_in = pipe.metrics.records_in.labels(topic=source)
    m_out = pipe.metrics.records_out.labels(topic=fixes_topic.get_topic_name())
    m_lag = pipe.metrics.event_time_lag.labels(topic=source)
    flow = fix_flow(pipe)
    fixes_name = fixes_topic.get_topic_name()

    def mine() -> set[int]:
        """The ``bike.fixes`` partitions this worker's agents hold."""
        return {tp.partition for tp in pipe.app.consumer.assignment() if tp.topic == fixes_name}

    async def throttle() -> None:
        await flow.wait(mine)

    newest: dict[int, int] = {}  # source partition -> newest fix ts handed over (never goes back)

    async def validate_fixes(batch: Batch) -> None:
        latest = message_limits(batch.timestamps(), s.max_clock_skew_s)  # the newest fix time each message allows
        good, origin, bad = decode_gps_origins(batch.values(), latest)  # one batch for all the messages
        futures = await send_record_dead_letters(pipe, ((batch.source(i), d) for i, d in bad))
        if len(good):
            sources = batch.partitions(origin)
            for q in np.unique(sources).tolist():
                high = int(good.ts[sources == q].max())
                newest[q] = max(newest.get(q, high), high)
        marks = [(q, newest.get(q), idle) for q, idle in sorted(batch.idle.items())]
        chunks = partition_chunks(good, s.partitions)
        last = {p: i for i, (p, _) in enumerate(chunks)}
        chunks += [(p, FixBatch()) for p in range(s.partitions) if p not in last]  # marks only
        for i, (p, chunk) in enumerate(chunks):
            tops = [int(chunk.ts.max())] if len(chunk) else [t for _, t, _ in marks if t is not None]
            value = encode_fixes(chunk, src=marks) if last.get(p, i) == i else encode_fixes(chunk)
            futures.append(await fixes_topic.send(
                value=value, partition=p, timestamp=max(tops) / 1000 if tops else None, force=True,
            ))
            flow.sent(p, len(chunk))
            m_out.inc()
        await asyncio.gather(*futures)  # delivered before the source offsets are committed
        m_in.inc(len(batch))
        if len(good):
            m_lag.set(time.time() - float(good.ts.max()) / 1000)  # wall clock: a metric, not logic

    async def tick() -> None:
        """Nothing read for a while: an empty message (no marks) to every ``bike.fixes`` partition. A supervisor
        looks at its source clock only when a message comes; one whose clock waits for a source that will send
        nothing more (a worker gone after marking its partition unread, the end of a replay) would otherwise
        never see that source fall silent and stay stopped. The tick changes no mark, so it moves no clock
        except by that rule."""
        tops = list(newest.values())
        futures = [await fixes_topic.send(value=encode_fixes(FixBatch()), partition=p, force=True,
                                          timestamp=max(tops) / 1000 if tops else None) for p in range(s.partitions)]
        await asyncio.gather(*futures)

    BatchIngest(pipe, "bike.gps", validate_fixes, max_records=s.ingest_batch_size,  # an app task and service
                throttle=throttle, tick=tick, tick_s=max(s.bike_idle_source_s / 4, 0.5))
