"""The dead letter: a record that could not be used, with why (every feed's validation makes them)."""

from __future__ import annotations

__all__ = ["DeadLetter"]

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with why.

    ``item`` is the index of the fix inside a batch message, or -1 when the whole message is bad.
    ``payload`` holds the offending bytes (the single fix re-encoded, or the whole message).
    """

    reason: str
    detail: str
    item: int
    payload: bytes
