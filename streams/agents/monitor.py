"""Periodic metrics that no agent sees by itself: consumer lag per assigned partition."""

from __future__ import annotations

__all__ = ["register", "consumer_lags"]

from typing import Any

from faust.types import TP

from streams.app import Pipeline


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

    @pipe.app.timer(pipe.settings.monitor_interval_s, name=f"monitor_{pipe.role.value}")
    async def monitor() -> None:
        for tp, lag in consumer_lags(pipe).items():
            gauge.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
