"""Dead-letter records: bad input goes to the dead-letter topic with the reason, and is counted."""

from __future__ import annotations

__all__ = ["dead_letter_value", "send_dead_letters"]

from collections.abc import Iterable
from typing import Any

import orjson
from faust.types import EventT

from models.gps import DeadLetter
from streams.app import Pipeline


def dead_letter_value(event: EventT, dead: DeadLetter) -> bytes:
    """The dead-letter message for ``dead`` found in the message of ``event``."""
    msg = event.message
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


async def send_dead_letters(pipe: Pipeline, items: Iterable[tuple[EventT, DeadLetter]]) -> list[Any]:
    """Send every dead letter, count it, and return the delivery futures to await."""
    topic = pipe.topic("deadletter")
    futures = []
    for event, dead in items:
        futures.append(await topic.send(
            key=event.message.key, value=dead_letter_value(event, dead), timestamp=event.message.timestamp,
            force=True,  # publish now, not attached to the source offset's commit: we wait for delivery
        ))
        pipe.metrics.dead_letters.labels(topic=event.message.topic, reason=dead.reason).inc()
    return futures
