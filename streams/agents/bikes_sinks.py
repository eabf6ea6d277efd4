"""Sinks of the bike domain: violations, GPS faults, parkings, zone occupancy and fleet counts into ClickHouse.

Violations and GPS faults share ``bike.violations``: each row says which table it belongs to (``t``) and
each of the two sinks keeps its own. Every table is a ReplacingMergeTree keyed by the row's identity
(``sinks/sql/002_bikes.sql``), so re-delivered and re-computed rows replace themselves.
"""

from __future__ import annotations

__all__ = ["register_sinks", "typed_rows"]

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from faust.types import EventT, StreamT

from streams.agents.bikes_rows import (
    FAULT_COLUMNS,
    FLEET_COLUMNS,
    OCCUPANCY_COLUMNS,
    PARKING_COLUMNS,
    VIOLATION_COLUMNS,
)
from streams.app import Pipeline
from streams.sinking import register_json_sink, run_sink


def typed_rows(columns: Sequence[str], kind: str) -> Callable[[EventT], list[tuple[Any, ...]]]:
    """Rows of the JSON objects (or arrays of them) whose ``t`` is ``kind``, as tuples of ``columns``."""

    def rows_of(event: EventT) -> list[tuple[Any, ...]]:
        doc = orjson.loads(event.value)
        return [tuple(r[c] for c in columns) for r in (doc if isinstance(doc, list) else (doc,)) if r.get("t") == kind]

    return rows_of


def _typed_sink(pipe: Pipeline, topic: str, table: str, columns: Sequence[str], kind: str, name: str) -> None:
    rows_of = typed_rows(columns, kind)

    async def store(stream: StreamT) -> None:
        await run_sink(pipe, stream, table, columns, rows_of)

    store.__name__ = store.__qualname__ = name
    pipe.app.agent(pipe.topic(topic), name=name)(store)


def register_sinks(pipe: Pipeline) -> None:
    """Add the bike sink agents (sink role)."""
    _typed_sink(pipe, "bike.violations", "bike_violations", VIOLATION_COLUMNS, "violation", "store_bike_violations")
    _typed_sink(pipe, "bike.violations", "bike_gps_faults", FAULT_COLUMNS, "fault", "store_bike_faults")
    _typed_sink(pipe, "bike.parkings", "bike_parkings", PARKING_COLUMNS, "parking", "store_bike_parkings")
    register_json_sink(pipe, "bike.zone-occupancy", "bike_zone_occupancy", OCCUPANCY_COLUMNS, "store_zone_occupancy")
    register_json_sink(pipe, "bike.fleet-day", "bike_fleet_day", FLEET_COLUMNS, "store_fleet_days")
