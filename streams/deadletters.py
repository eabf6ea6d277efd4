"""Dead-letter records: bad input goes to the dead-letter topic with the reason, and is counted."""

from __future__ import annotations

__all__ = ["Source", "dead_letter_value", "send_dead_letters", "send_record_dead_letters"]

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson
from faust.types import EventT

from models.dead_letter import DeadLetter
from streams.app import Pipeline


class Source(NamedTuple):
    """Where a bad record came from: the fields of a Faust message a dead letter needs (timestamp in s)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp: float


def _value(msg: Any, dead: DeadLetter) -> bytes:
    return orjson.dumps({
        "source_topic": msg.topic,
        "source_partition": msg.partition,
        "source_offset": msg.offset,
        "item": dead.item,
        "key": (msg.key or b"").decode("utf-8", "replace"),
        "reason": dead.reason,
        "detail": dead.detail,
        "payload": dead.payload.decode("utf-8", "replace"),
        # The source message's timestamp: the event time when the producer set it (replay does).
        "event_ms": int(msg.timestamp * 1000),
    })


def dead_letter_value(event: EventT, dead: DeadLetter) -> bytes:
    """The dead-letter message for ``dead`` found in the message of ``event``."""
    return _value(event.message, dead)


async def _send(pipe: Pipeline, items: Iterable[tuple[Any, DeadLetter]]) -> list[Any]:
    topic = pipe.topic("deadletter")
    futures = []
    for msg, dead in items:
        futures.append(await topic.send(
            key=msg.key, value=_value(msg, dead), timestamp=msg.timestamp,
            force=True,  # publish now, not attached to the source offset's commit: we wait for delivery
        ))
        pipe.metrics.dead_letters.labels(topic=msg.topic, reason=dead.reason).inc()
    return futures


async def send_dead_letters(pipe: Pipeline, items: Iterable[tuple[EventT, DeadLetter]]) -> list[Any]:
    """Send every dead letter, count it, and return the delivery futures to await."""
    return await _send(pipe, ((event.message, dead) for event, dead in items))


async def send_record_dead_letters(pipe: Pipeline, items: Iterable[tuple[Any, DeadLetter]]) -> list[Any]:
    """:func:`send_dead_letters` for aiokafka ``ConsumerRecord``s (timestamp in ms), e.g. of an ingest stage."""
    return await _send(pipe, (
        (Source(r.topic, r.partition, r.offset, r.key, r.timestamp / 1000), dead) for r, dead in items
    ))
