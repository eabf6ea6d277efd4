"""Sink: validated GPS fixes into ``bike_fixes`` (raw rows, deduplicated by bike and event time)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

from faust.types import EventT, StreamT

from models.fix_messages import decode_fixes
from sinks.batching import Columns
from streams.app import Pipeline
from streams.sinking import run_sink

COLUMNS = ("bike_id", "operator", "ts_ms", "lat", "lon", "locked")


def rows_of(event: EventT) -> Columns:
    """The fixes of a ``bike.fixes`` message (``models.fix_messages``) as columns, the numeric ones as the
    decoded numpy arrays (written by their bytes)."""
    b, _ = decode_fixes(event.value)
    return Columns(b.bike_id, b.operator, b.ts, b.lat, b.lon, b.locked)


def register(pipe: Pipeline) -> None:
    if not pipe.runs_sinks:
        return
    @pipe.app.agent(pipe.topic("bike.fixes"), name="store_fixes")
    async def store_fixes(stream: StreamT) -> None:
        await run_sink(pipe, stream, "bike_fixes", COLUMNS, rows_of)
