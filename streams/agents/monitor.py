"""Periodic metrics no agent sees by itself (consumer lag), and the repair of stalled commits."""

from __future__ import annotations

__all__ = ["register", "consumer_lags", "heal_stalled", "read_to_end", "AckClock"]  # AckClock lives in streams.clock

import logging
from typing import Any

from faust.types import TP

from streams.app import Pipeline
from streams.clock import AckClock, ack_clock
from streams.ingest import ingests

log = logging.getLogger(__name__)

#: Seconds a partition's lag may stay unchanged, while it is read to its end, before it counts as stalled.
STALL_AFTER_S = 15.0


def consumer_lags(pipe: Pipeline) -> dict[TP, int]:
    """High watermark minus committed offset for every assigned partition of the agents' topics.

    Table changelog partitions are assigned too (for recovery) but never committed: they are left out.
    The high watermark comes from Fetch responses, not ListOffsets: Tansu's ListOffsets(latest) returns the
    start of the last batch, so ``end_offsets()`` under-reports there. The ingest stages' partitions
    (``streams/ingest.py``, their own consumer group) are included.
    """
    consumer: Any = pipe.app.consumer
    ours = {t.get_topic_name() for t in pipe.topics.values()}
    lags = {}
    for tp in consumer.assignment():
        if tp.topic not in ours:
            continue
        try:
            high = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not fetched yet
            continue
        if high is None:
            continue
        committed = consumer._committed_offset.get(tp)  # Faust keeps the last committed offset per partition
        lags[tp] = max(0, high - (committed or 0))
    for ingest in ingests(pipe):
        lags.update(ingest.lags())
    return lags


def read_to_end(pipe: Pipeline) -> bool:
    """True when every assigned partition of the agents' topics (and of the ingest stages) has been read up
    to its high watermark."""
    if not all(ingest.read_to_end() for ingest in ingests(pipe)):
        return False
    c: Any = pipe.app.consumer
    ours = {t.get_topic_name() for t in pipe.topics.values()}
    for tp in c.assignment():
        if tp.topic not in ours:
            continue
        try:
            high = c.highwater(tp)
        except Exception:  # noqa: BLE001 - not fetched yet
            return False
        if high is None:
            return False
        committed = c._committed_offset.get(tp) or 0
        read = c._read_offset.get(tp)
        if committed < high and (read is None or read < high - 1):
            return False
    return True


async def heal_stalled(pipe: Pipeline, tp: TP, lag: int) -> bool:
    """Re-deliver a partition whose commits stopped although it was read to its end.

    Seen with faust-streaming 0.15 on worker restarts (rebalance while messages flow): one message of a
    partition is delivered but never acked, its offset never enters Faust's acked list, and the gap blocks
    every later commit of the partition, so the lag never falls. Dropping the partition's stale bookkeeping
    and seeking back to the committed offset re-delivers the messages after it; every step downstream is
    idempotent, so re-processing them is harmless. The monitor calls it only when the whole worker has finished
    no message for ``STALL_AFTER_S`` (a slow agent still working through a backlog is not stalled). Returns
    True when it re-sought the partition.
    """
    c: Any = pipe.app.consumer
    committed = c._committed_offset.get(tp)
    read = c._read_offset.get(tp)
    try:
        high = c.highwater(tp)
    except Exception:  # noqa: BLE001 - not fetched yet
        return False
    if committed is None or read is None or high is None or read < high - 1:
        return False  # still reading: slow, not stalled
    acked = sorted(c._acked.get(tp, []))
    stale = [m for m in c._unacked_messages if m.tp == tp]
    log.warning(
        "commits stalled on %s[%d]: lag %d, committed %s, read %s, high watermark %s, acked %d offsets (first %s), "
        "unacked %s: seeking back to %s to re-deliver", tp.topic, tp.partition, lag, committed, read, high,
        len(acked), acked[:5], sorted(m.offset for m in stale)[:5], committed,
    )
    for m in stale:
        c._unacked_messages.discard(m)
    # Both views of "acked": ack() refuses an offset still in _acked_index, so a re-delivery could never count.
    c._acked[tp].clear()
    c._acked_index[tp].clear()
    await c.seek(tp, committed)
    return True


def register(pipe: Pipeline) -> None:
    gauge = pipe.metrics.consumer_lag
    assigned = pipe.metrics.assigned_partitions
    interval = pipe.settings.monitor_interval_s
    stall_ticks = max(3, int(STALL_AFTER_S / interval))
    stalled: dict[TP, tuple[int, int]] = {}  # partition -> (lag, ticks unchanged)
    clock = ack_clock(pipe)

    @pipe.app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(app: Any, assigned_tps: set[TP], **_: Any) -> None:
        assigned.set(len(assigned_tps))
        stalled.clear()

    reported: set[TP] = set()
    faust_topics = {t.get_topic_name() for t in pipe.topics.values()} - {i.topic for i in ingests(pipe)}

    @pipe.app.timer(interval, name=f"monitor_{pipe.role.value}")
    async def monitor() -> None:
        pipe.metrics.idle_seconds.set(clock.idle_s())
        lags = consumer_lags(pipe)
        for tp in reported - lags.keys() - set(pipe.app.consumer.assignment()):  # revoked: no stale lag
            gauge.remove(tp.topic, str(tp.partition))
            reported.discard(tp)
        for tp, lag in lags.items():
            gauge.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
            reported.add(tp)
            if tp.topic not in faust_topics:
                continue  # an ingest stage's partition: it commits by itself, nothing to heal
            prev, ticks = stalled.get(tp, (-1, 0))
            ticks = ticks + 1 if lag == prev and lag > 0 else 0
            stalled[tp] = (lag, ticks)
            idle = clock.idle_s() >= STALL_AFTER_S
            if ticks >= stall_ticks and idle and await heal_stalled(pipe, tp, lag):
                stalled[tp] = (lag, 0)
