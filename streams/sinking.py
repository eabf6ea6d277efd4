"""The loop every sink agent runs: take a batch, turn messages into rows, flush, and only then ack."""

from __future__ import annotations

__all__ = ["run_sink", "json_rows", "register_json_sink"]

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from faust.types import EventT, StreamT

from models.dead_letter import DeadLetter
from sinks.batching import BatchingSink, Columns, Rejected
from streams.app import Pipeline
from streams.clock import ack_clock
from streams.deadletters import send_dead_letters


async def run_sink(
    pipe: Pipeline, stream: StreamT, table: str, columns: Sequence[str],
    rows_of: Callable[[EventT], list[tuple[Any, ...]] | Columns],
) -> None:
    """Consume ``stream`` into ClickHouse ``table``; offsets are acked only after the insert succeeded.

    A batch ClickHouse refuses for good (bad data or schema) goes to the dead-letter topic message by
    message, with reason ``sink_rejected`` — except for the dead-letter table itself, where it is logged
    and counted (``citystream_sink_failures_total``) rather than looped back.
    """
    assert pipe.clickhouse is not None
    s = pipe.settings
    current: dict[tuple[str, int, int], EventT] = {}
    dlq_topic = pipe.settings.topic("deadletter")
    clock = ack_clock(pipe)

    async def on_reject(rejected: Rejected) -> None:
        items = [
            (current[src], DeadLetter("sink_rejected", f"{rejected.reason}"[:500], -1, current[src].value or b""))
            for src in rejected.sources if src in current and src[0] != dlq_topic
        ]
        await asyncio.gather(*await send_dead_letters(pipe, items))

    sink = BatchingSink(pipe.clickhouse, table, columns, pipe.metrics, on_reject=on_reject)
    metric = None
    async for events in stream.noack_take(s.sink_batch_size, within=s.sink_within_s):  # type: ignore[attr-defined]  # Faust stub
        current = {(e.message.topic, e.message.partition, e.message.offset): e for e in events}
        with clock.working():  # a big insert is work under way, not idleness
            for ev in events:
                m = ev.message
                sink.add(rows_of(ev), m.topic, m.partition, m.offset)
            await sink.flush()
        for ev in events:
            await stream.ack(ev)
        if metric is None:
            metric = pipe.metrics.records_in.labels(topic=events[0].message.topic)
        metric.inc(len(events))


def json_rows(columns: Sequence[str]) -> Callable[[EventT], list[tuple[Any, ...]]]:
    """Rows from JSON messages: an object is one row, an array of objects many (the values of ``columns``)."""

    def rows_of(event: EventT) -> list[tuple[Any, ...]]:
        doc = orjson.loads(event.value)
        return [tuple(r[c] for c in columns) for r in (doc if isinstance(doc, list) else (doc,))]

    return rows_of


def register_json_sink(pipe: Pipeline, topic: str, table: str, columns: Sequence[str], name: str) -> None:
    """A sink agent named ``name`` storing JSON messages of ``topic`` (short name) into ``table`` (see json_rows)."""
    rows_of = json_rows(columns)

    async def store(stream: StreamT) -> None:
        await run_sink(pipe, stream, table, columns, rows_of)

    store.__name__ = store.__qualname__ = name
    pipe.app.agent(pipe.topic(topic), name=name)(store)
