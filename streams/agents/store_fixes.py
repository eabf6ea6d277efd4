"""Sink: validated GPS fixes into ``bike_fixes`` (raw rows, deduplicated by bike and event time)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

import orjson
from faust.types import EventT, StreamT

from sinks.batching import Columns
from streams.app import Pipeline
from streams.sinking import run_sink

COLUMNS = ("bike_id", "operator", "ts_ms", "lat", "lon", "locked")


def rows_of(event: EventT) -> Columns:
    """The fixes of a columnar ``bike.fixes`` message (``FixBatch.to_json``) as columns, straight from JSON."""
    d = orjson.loads(event.value)
    return Columns(d["bike_id"], d["operator"], d["ts"], d["lat"], d["lon"], d["locked"])


def register(pipe: Pipeline) -> None:
    if not pipe.runs_sinks:
        return
    @pipe.app.agent(pipe.topic("bike.fixes"), name="store_fixes")
    async def store_fixes(stream: StreamT) -> None:
        await run_sink(pipe, stream, "bike_fixes", COLUMNS, rows_of)
