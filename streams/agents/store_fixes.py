"""Sink: validated GPS fixes into ``bike_fixes`` (raw rows, deduplicated by bike and event time)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

from typing import Any

from faust.types import EventT, StreamT

from models.gps import FixBatch
from streams.app import Pipeline
from streams.sinking import run_sink

COLUMNS = ("bike_id", "operator", "ts_ms", "lat", "lon", "locked")


def rows_of(event: EventT) -> list[tuple[Any, ...]]:
    b = FixBatch.from_json(event.value)
    return list(zip(b.bike_id, b.operator, b.ts.tolist(), b.lat.tolist(), b.lon.tolist(), b.locked.tolist(), strict=True))


def register(pipe: Pipeline) -> None:
    if not pipe.runs_sinks:
        return
    @pipe.app.agent(pipe.topic("bike.fixes"), name="store_fixes")
    async def store_fixes(stream: StreamT) -> None:
        await run_sink(pipe, stream, "bike_fixes", COLUMNS, rows_of)
