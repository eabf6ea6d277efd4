"""Sink: dead letters into ``dead_letters`` (one row per distinct bad record and reason)."""

from __future__ import annotations

__all__ = ["register", "COLUMNS"]

from streams.app import Pipeline
from streams.sinking import register_json_sink

COLUMNS = ("source_topic", "source_partition", "source_offset", "item", "key", "reason", "detail", "payload", "event_ms")


def register(pipe: Pipeline) -> None:
    if pipe.runs_sinks:
        register_json_sink(pipe, "deadletter", "dead_letters", COLUMNS, "store_dead_letters")
