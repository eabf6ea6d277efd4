"""Durable agent state: Faust tables of bytes, written straight to their changelog topics.

Models serialize their own compact state; an agent keeps the live state in its model objects and uses
the table only as the durable log and for recovery (Faust replays the changelog into ``table.data`` when
partitions are (re)assigned). Entries of one batch go to one changelog partition in program order, and
Kafka keeps that order, so a crash leaves a *prefix* of the batch persisted: write what must survive
first (see ``docs/architecture.md``).
"""

from __future__ import annotations

__all__ = ["END_MARKER", "Entry", "raw_table", "persist"]

import asyncio
from typing import Any

from streams.app import Pipeline
from streams.batches import send_batches

#: Key of the end-marker records (see ``Settings.changelog_end_markers``); never a real state key.
END_MARKER = b"~end"

#: One state write: (changelog partition, key, value or None to delete).
Entry = tuple[int, bytes, bytes | None]


def raw_table(pipe: Pipeline, name: str) -> Any:
    """A table of bytes keys and values, co-partitioned with the agents' topics."""
    table = pipe.app.Table(name, key_type=bytes, value_type=bytes, partitions=pipe.settings.partitions)
    table.key_serializer = table.value_serializer = "raw"  # type: ignore[attr-defined]  # before the changelog is built
    return table


async def send_entries(table: Any, entries: list[Entry]) -> list[Any]:
    """Hand ``entries`` to the producer in order, as record batches per changelog partition
    (:func:`streams.batches.send_batches`); returns the delivery futures (await them)."""
    if not entries:
        return []
    producer = table.app.producer._ensure_producer()  # the aiokafka producer Faust sends with
    return await send_batches(producer, table.changelog_topic.get_topic_name(),
                              ((p, k, v, None) for p, k, v in entries))


async def persist(table: Any, entries: list[Entry], end_markers: bool, also: list[Any] | None = None) -> None:
    """Write ``entries`` to the table's changelog and wait until the broker has them (and ``also``).

    Straight to the changelog topic rather than ``send_changelog``: that goes through Faust's 100-message
    producer buffer, far too small for a batch of state.

    Tansu quirk: ListOffsets(latest) returns the start offset of the last record batch, and Faust's
    recovery reads a changelog only up to that offset. A one-record marker batch, sent after the entries
    were acknowledged (so it cannot share their batch), makes the last batch the marker alone.
    """
    futures = await send_entries(table, entries)
    await asyncio.gather(*futures, *(also or ()))
    if end_markers and entries:
        topic = table.changelog_topic
        await asyncio.gather(*[
            await topic.send(key=END_MARKER, value=b"", partition=p, force=True) for p in sorted({e[0] for e in entries})
        ])
