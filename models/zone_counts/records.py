"""The state records of :mod:`models.zone_counts`: a bike's and a window's readable forms (and their entry
formats), the outcome of a message, and the array helpers the counter and its agent share."""

from __future__ import annotations

__all__ = ["BikeSeen", "Window", "BatchOutcome", "MINUTE_MS", "NONE", "UNSEEN", "pack_windows", "union"]

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import orjson
from numpy.typing import NDArray

MINUTE_MS = 60_000

_I64 = np.int64
NONE = int(np.iinfo(np.int64).min)  # an empty slot of a ring or of the counted windows
UNSEEN = -(1 << 62)  # newest fix of a bike row with no accepted fix (minus the lateness: no overflow)
ZONE_BITS = 32
ZONE_MASK = (1 << ZONE_BITS) - 1
BIKE_FORMAT = 0xB2  # low byte of the first word of a binary bike entry (0xB1: the whole row; JSON entries start with "[")
WINDOW_BYTES = 32
def _empty() -> NDArray[np.int64]:
    return np.empty(0, _I64)


@dataclass(slots=True)
class BikeSeen:
    """What a counter remembers of one bike, in readable form: newest fix, recent fixes (in the order
    accepted), counted windows ``(minute_ms, zone)`` within its lateness horizon.

    ``to_bytes``/``from_bytes`` are the JSON entry format of earlier versions (still read by
    :meth:`ZoneMinuteCounter.load`).
    """

    last_ts: int
    recent: list[int] = field(default_factory=list)
    counted: list[tuple[int, str]] = field(default_factory=list)

    def to_bytes(self, partition: int) -> bytes:
        return orjson.dumps([partition, self.last_ts, self.recent, self.counted])

    @staticmethod
    def from_bytes(data: bytes) -> tuple[int, BikeSeen]:
        p, last, recent, counted = orjson.loads(data)
        return p, BikeSeen(last, recent, [(m, z) for m, z in counted])


@dataclass(slots=True)
class Window:
    """Counts of one (minute, zone) in one partition."""

    fixes: int = 0
    bikes: int = 0
    locked: int = 0
    last_offset: int = -1

    def to_bytes(self) -> bytes:
        """32 bytes: the four counts as little-endian int64 (see :func:`pack_windows`)."""
        return np.array([self.fixes, self.bikes, self.locked, self.last_offset], "<i8").tobytes()

    @staticmethod
    def from_bytes(data: bytes) -> Window:
        """Read :meth:`to_bytes`, or the JSON array of earlier versions."""
        if data[-1:] == b"]":  # JSON; the last byte of the binary form is that of last_offset's sign (0 or 255)
            return Window(*orjson.loads(data))
        return Window(*np.frombuffer(data, "<i8").tolist())


def union(parts: Iterable[NDArray[np.int64]]) -> NDArray[np.int64]:
    """The sorted distinct values of int arrays (``np.unique`` of their concatenation, several times faster
    than numpy's hash-based ``unique`` on these sizes)."""
    a = np.sort(np.concatenate([_empty(), *parts]))
    if len(a) > 1:
        keep = np.empty(len(a), np.bool_)
        keep[0] = True
        np.not_equal(a[1:], a[:-1], out=keep[1:])
        a = a[keep]
    return a


def pack_windows(counts: NDArray[np.int64]) -> list[bytes]:
    """:meth:`Window.to_bytes` of each row ``(fixes, bikes, locked, last_offset)`` of ``counts``."""
    buf = np.ascontiguousarray(counts, "<i8").tobytes()
    return [buf[i:i + WINDOW_BYTES] for i in range(0, len(buf), WINDOW_BYTES)]


@dataclass(slots=True)
class BatchOutcome:
    """What one message changed and tallies. ``windows``: codes of the windows it changed (to persist and
    emit; :meth:`ZoneMinuteCounter.window_keys` names them); ``bikes``: rows of the bikes with an accepted
    fix (to persist; :meth:`ZoneMinuteCounter.bike_ids_of`). Both unique, in no particular order."""

    windows: NDArray[np.int64] = field(default_factory=_empty)
    bikes: NDArray[np.int64] = field(default_factory=_empty)
    accepted: int = 0
    duplicate: int = 0
    late: int = 0
