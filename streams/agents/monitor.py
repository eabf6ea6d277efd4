"""Periodic metrics that no agent sees by itself: consumer lag per assigned partition."""

from __future__ import annotations

__all__ = ["register", "consumer_lags"]

import logging
from typing import Any

from faust.types import TP

from streams.app import Pipeline

log = logging.getLogger(__name__)


def consumer_lags(pipe: Pipeline) -> dict[TP, int]:
    """High watermark minus committed offset for every assigned partition of the agents' topics.

    Table changelog partitions are assigned too (for recovery) but never committed: they are left out.

    The high watermark comes from Fetch responses, not ListOffsets: Tansu's ListOffsets(latest) returns the
    start of the last batch, so ``end_offsets()`` under-reports there.
    """
    consumer = pipe.app.consumer
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
    return lags


def register(pipe: Pipeline) -> None:
    gauge = pipe.metrics.consumer_lag
    assigned = pipe.metrics.assigned_partitions

    @pipe.app.on_partitions_assigned.connect
    async def on_assigned(app: Any, assigned_tps: set[TP], **_: Any) -> None:
        assigned.set(len(assigned_tps))

    stalled: dict[TP, tuple[int, int]] = {}  # partition -> (lag, ticks unchanged)
    stall_ticks = max(3, int(10 / pipe.settings.monitor_interval_s))

    @pipe.app.timer(pipe.settings.monitor_interval_s, name=f"monitor_{pipe.role.value}")
    async def monitor() -> None:
        for tp, lag in consumer_lags(pipe).items():
            gauge.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
            prev, ticks = stalled.get(tp, (-1, 0))
            ticks = ticks + 1 if lag == prev and lag > 0 else 0
            stalled[tp] = (lag, ticks)
            if ticks == stall_ticks:
                _warn_stalled(pipe, tp, lag)


def _warn_stalled(pipe: Pipeline, tp: TP, lag: int) -> None:
    """Say why a partition's commits stopped: the acked offsets and gaps Faust is waiting on."""
    c = pipe.app.consumer
    acked = sorted(c._acked.get(tp, []))
    log.warning(
        "commits stalled on %s[%d]: lag %d, committed %s, acked %d offsets %s..%s (first %s), unacked in flight %d",
        tp.topic, tp.partition, lag, c._committed_offset.get(tp), len(acked), acked[:1], acked[-1:], acked[:10],
        sum(1 for m in c._unacked_messages if m.tp == tp),
    )
