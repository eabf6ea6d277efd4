"""The worker's processing heartbeat: when it last finished a message, and whether a batch is under way.

``citystream_idle_seconds`` (and so every drain check: the demo, the integration harness, ``bench``) reads it.
A stage working through one big batch acks nothing for seconds; it marks itself busy (:meth:`AckClock.working`)
so that it is not taken for idle.
"""

from __future__ import annotations

__all__ = ["AckClock", "ack_clock", "YIELD_EVERY_FIXES"]

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.sensors import Sensor
from faust.types import TP

#: A stage working through a big batch hands the event loop back about this often (~0.1-0.3 s of work), so
#: consumer heartbeats (the ingest's run on this loop), timers and metrics keep going.
YIELD_EVERY_FIXES = 20_000


class AckClock(Sensor):
    """When the worker last finished a message (the last stream acked it), and how many batches are in work."""

    def __init__(self) -> None:
        super().__init__()
        self.last_ack = time.monotonic()
        self.busy = 0

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        self.last_ack = time.monotonic()

    def idle_s(self) -> float:
        """Seconds since the last message was finished; 0 while a batch is being processed."""
        return 0.0 if self.busy else time.monotonic() - self.last_ack

    @contextmanager
    def working(self) -> Iterator[None]:
        """Mark a batch under way (not idle) until it is done."""
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self.last_ack = time.monotonic()


def ack_clock(pipe: Any) -> AckClock:
    """The pipeline's clock (created and registered as a Faust sensor on first use)."""
    clock = pipe.state.get("ack_clock")
    if clock is None:
        clock = pipe.state["ack_clock"] = AckClock()
        pipe.app.sensors.add(clock)
    return clock
