"""What the keyed batch agents share: one model per source partition, rebuilt from the agent's state table on
first use and forgotten when a rebalance gives the partition to another worker (its next owner rebuilds it from the
changelog; :func:`keep_models_of_assigned`), and the
agent loop (take a batch without acking, process it, ack once its outputs are delivered and its state written).
"""

from __future__ import annotations

__all__ = ["PartitionModels", "by_partition", "keep_models_of_assigned", "message_limit_of", "register_batch_agent"]

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from faust.types import EventT, StreamT

from models.timefmt import message_limit
from streams.app import Pipeline
from streams.clock import ack_clock
from streams.state import END_MARKER

M = TypeVar("M")


def keep_models_of_assigned(pipe: Pipeline, topic: str, *per_partition: dict[int, Any],
                            then: Callable[[], None] | None = None) -> None:
    """After every rebalance, drop from each of ``per_partition`` (keyed by partition of ``topic``) the partitions
    this worker no longer holds, then call ``then``: the models of the partitions it kept stay (live and current),
    the others go (their next owner rebuilds them from the changelog).

    Not on revocation: the standard (eager) protocol revokes every partition at each rebalance, and a model rebuilt
    from the table for a partition the worker kept would miss the worker's own state writes since that table was
    recovered: they go straight to the changelog (:func:`streams.state.persist`), and Faust does not read a
    changelog partition back while it stays with the worker. (Session 15: after a failover the survivor rebuilt
    its own partitions' supervisors from a table without a single one of their bikes.)"""

    @pipe.app.on_partitions_assigned.connect  # type: ignore[arg-type]  # Faust stub: async receivers work
    async def on_assigned(app_: Any, assigned: set[Any], **_: Any) -> None:
        kept = {tp.partition for tp in assigned if tp.topic == topic}
        for models in per_partition:
            for p in [p for p in models if p not in kept]:
                del models[p]
        if then is not None:
            then()


class PartitionModels(Generic[M]):
    """``models[p]``: partition ``p``'s model, built by ``build(p, entries)`` on first use, where ``entries``
    are the recovered ``(key, value)`` state entries of the table (all assigned partitions: a model keeps
    its own)."""

    def __init__(self, pipe: Pipeline, source: Any, table: Any,
                 build: Callable[[int, list[tuple[bytes, bytes]]], M]) -> None:
        self.table, self.build = table, build
        self.models: dict[int, M] = {}
        topic = source.get_topic_name()

        keep_models_of_assigned(pipe, topic, self.models)

    def __getitem__(self, p: int) -> M:
        if p not in self.models:
            entries = [(k, v) for k, v in self.table.data.items() if v and k != END_MARKER]
            self.models[p] = self.build(p, entries)
        return self.models[p]


def message_limit_of(ev: EventT, skew_s: float | None) -> int | None:
    """The newest event time ``ev``'s message may carry (:func:`models.timefmt.message_limit`; Faust keeps the
    timestamp in seconds, None for a message without one)."""
    ts = ev.message.timestamp
    return None if ts is None else message_limit(ts * 1000, skew_s)


def by_partition(events: list[EventT]) -> list[tuple[int, list[EventT]]]:
    """The events grouped by source partition, in partition order (arrival order within one)."""
    groups: dict[int, list[EventT]] = defaultdict(list)
    for ev in events:
        groups[ev.message.partition].append(ev)
    return sorted(groups.items())


def register_batch_agent(pipe: Pipeline, source: Any, name: str,
                         process: Callable[[list[EventT]], Awaitable[None]], *, counts_in: bool = True) -> None:
    """Add agent ``name`` on ``source``: batches of up to ``CITYSTREAM_BATCH_SIZE`` events go to ``process``,
    which returns once the batch's outputs are delivered and its state is written; then the events are acked.

    While a batch is in work the worker is busy, not idle (:meth:`streams.clock.AckClock.working`).
    ``counts_in``: count the events in ``citystream_records_in_total``; False where another consumer of the
    topic counts them (``bike.fixes`` is counted by its sink), so a topic is counted once.
    """
    s = pipe.settings
    m_in = pipe.metrics.records_in.labels(topic=source.get_topic_name()) if counts_in else None
    clock = ack_clock(pipe)

    async def agent(stream: StreamT) -> None:
        async for events in stream.noack_take(  # type: ignore[attr-defined]  # in Faust, not in its stub
                s.batch_size, within=s.batch_within_s):
            with clock.working():
                await process(events)
            for ev in events:
                await stream.ack(ev)
            if m_in is not None:
                m_in.inc(len(events))

    agent.__name__ = agent.__qualname__ = name
    pipe.app.agent(source, name=name)(agent)
