"""Sink: per-minute, per-zone counts into ``bike_zone_minute`` (upserts, newest version wins)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

from typing import Any

import orjson
from faust.types import EventT, StreamT

from streams.app import Pipeline
from streams.sinking import run_sink

COLUMNS = ("minute_ms", "zone", "partition", "fixes", "bikes", "locked", "version")


def rows_of(event: EventT) -> list[tuple[Any, ...]]:
    r = orjson.loads(event.value)
    return [tuple(r[c] for c in COLUMNS)]


def register(pipe: Pipeline) -> None:
    @pipe.app.agent(pipe.topic("bike.zone-minute"), name="store_zone_minutes")
    async def store_zone_minutes(stream: StreamT) -> None:
        await run_sink(pipe, stream, "bike_zone_minute", COLUMNS, rows_of)
