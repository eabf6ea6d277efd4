"""Sink: dead letters into ``dead_letters`` (one row per distinct bad record and reason)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

from typing import Any

import orjson
from faust.types import EventT, StreamT

from streams.app import Pipeline
from streams.sinking import run_sink

COLUMNS = ("source_topic", "source_partition", "source_offset", "item", "key", "reason", "detail", "payload", "event_ms")


def rows_of(event: EventT) -> list[tuple[Any, ...]]:
    r = orjson.loads(event.value)
    return [tuple(r[c] for c in COLUMNS)]


def register(pipe: Pipeline) -> None:
    @pipe.app.agent(pipe.topic("deadletter"), name="store_dead_letters")
    async def store_dead_letters(stream: StreamT) -> None:
        await run_sink(pipe, stream, "dead_letters", COLUMNS, rows_of)
