"""Sink: per-minute, per-zone counts into ``bike_zone_minute`` (upserts, newest version wins)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

from streams.app import Pipeline
from streams.sinking import register_json_sink

COLUMNS = ("minute_ms", "zone", "partition", "fixes", "bikes", "locked", "version")


def register(pipe: Pipeline) -> None:
    if pipe.runs_sinks:
        register_json_sink(pipe, "bike.zone-minute", "bike_zone_minute", COLUMNS, "store_zone_minutes")
