"""Keyed-by-fence stage: parked bikes per fence from the supervisors' occupancy deltas, and the
``fence_over_capacity`` violation (subject: the fence) while a fence holds more than its capacity.

The bikes of one fence live in different bike partitions, so each supervisor only emits +1/-1
deltas; this stage, fed by a topic keyed by fence, sums them. It keeps the set of bikes per fence
and their recent departures rather than a bare count, so a re-delivered delta changes nothing.
"""

from __future__ import annotations

__all__ = ["FenceOccupancy"]

from collections.abc import Iterable, Mapping
from itertools import groupby

import orjson

from models.bikes.events import OccupancyDelta, Violation, closed, opened
from models.bikes.ordering import EventTimeBuffer

_NEVER = -(2**63)


def _order(d: OccupancyDelta) -> tuple[int, str, int, str]:
    return (d.ts, d.zone_id, d.delta, d.bike_id)


class FenceOccupancy:
    """Occupancy and over-capacity violations of fences.

    Parameters
    ----------
    capacities
        Capacity per fence id; fences absent or with ``None`` are counted but never over capacity.
    allowed_lateness_ms
        Deltas are applied in event-time order once the newest seen is this much later.
    memory_ms
        How long a bike's departure from a fence is remembered, so that a re-delivered arrival
        older than it changes nothing.

    Example
    -------
    >>> occ = FenceOccupancy({"F1": 1}, allowed_lateness_ms=0)
    >>> occ.process([OccupancyDelta("F1", "a", 1000, 1), OccupancyDelta("F1", "b", 2000, 1)])[0].count
    2
    >>> v = occ.process([OccupancyDelta("F1", "a", 5000, -1)])[0]
    >>> v.action, v.subject_id, v.opened_ts, v.time_to_clear_s, occ.count("F1")
    ('close', 'F1', 2000, 3.0, 1)
    """

    def __init__(self, capacities: Mapping[str, int | None], allowed_lateness_ms: int = 60_000,
                 memory_ms: int = 86_400_000) -> None:
        self.capacities = dict(capacities)
        self.allowed_lateness_ms = allowed_lateness_ms
        self.parked: dict[str, dict[str, int]] = {}  # fence -> bike -> since (ts)
        self.open: dict[str, Violation] = {}
        self.memory_ms = memory_ms
        self.left: dict[str, dict[str, int]] = {}  # fence -> bike -> when it left (recent)
        self.ignored = 0  # deltas that changed nothing (re-deliveries, stale)
        self._forgot = _NEVER
        self._buffer: EventTimeBuffer[OccupancyDelta] = EventTimeBuffer(_order, allowed_lateness_ms)

    def count(self, zone_id: str) -> int:
        """Bikes parked in a fence now (as of the applied deltas)."""
        return len(self.parked.get(zone_id, ()))

    def process(self, deltas: Iterable[OccupancyDelta]) -> list[Violation]:
        """Take deltas (any order, any partition) and return the violations that opened or closed."""
        return self._apply(self._buffer.push(deltas))

    def advance_to(self, watermark_ms: int) -> list[Violation]:
        """Apply the deltas up to ``watermark_ms``."""
        return self._apply(self._buffer.advance_to(watermark_ms))

    def _apply(self, deltas: list[OccupancyDelta]) -> list[Violation]:
        out: list[Violation] = []
        # All changes of one fence at one instant count together: a swap is never over capacity.
        for (ts, zone_id), group in groupby(deltas, key=lambda d: (d.ts, d.zone_id)):
            bikes = self.parked.setdefault(zone_id, {})
            left = self.left.setdefault(zone_id, {})
            for d in group:
                if not self._change(bikes, left, d):
                    self.ignored += 1
            n, cap, v = len(bikes), self.capacities.get(zone_id), self.open.get(zone_id)
            if cap is not None and n > cap and v is None:
                v = self.open[zone_id] = opened(
                    "fence_over_capacity", zone_id, ts, ts, zone_id=zone_id, count=n, limit=cap)
                out.append(v)
            elif v is not None and (cap is None or n <= cap):
                out.append(closed(v, ts, "under_capacity", count=n))
                del self.open[zone_id]
        self._forget(self._buffer.watermark - self.memory_ms)
        return out

    @staticmethod
    def _change(bikes: dict[str, int], left: dict[str, int], d: OccupancyDelta) -> bool:
        """Apply one delta unless it is a re-delivery or older than what is known of that bike."""
        if d.delta > 0:
            if d.bike_id in bikes or left.get(d.bike_id, _NEVER) >= d.ts:
                return False
            bikes[d.bike_id] = d.ts
            left.pop(d.bike_id, None)
            return True
        since = bikes.get(d.bike_id)
        left[d.bike_id] = max(left.get(d.bike_id, _NEVER), d.ts)  # a later-arriving +1 stays stale
        if since is None or since > d.ts:
            return False
        del bikes[d.bike_id]
        return True

    def _forget(self, before: int) -> None:
        """Drop departure marks older than ``before`` (checked at most every quarter memory)."""
        if before < self._forgot + self.memory_ms // 4:
            return
        self._forgot = before
        for zone_id, left in self.left.items():
            self.left[zone_id] = {b: t for b, t in left.items() if t >= before}

    def snapshot(self) -> bytes:
        """Bikes per fence, open violations and waiting deltas, as bytes."""
        return orjson.dumps({
            "parked": self.parked, "left": self.left, "ignored": self.ignored, "forgot": self._forgot,
            "open": {z: [v.opened_ts, v.count, v.limit] for z, v in self.open.items()},
            "waiting": [[d.zone_id, d.bike_id, d.ts, d.delta] for d in self._buffer.items()],
            "clock": [self._buffer.watermark, self._buffer.max_seen, self._buffer.late],
        })

    @classmethod
    def restore(cls, capacities: Mapping[str, int | None], blob: bytes,
                allowed_lateness_ms: int = 60_000, memory_ms: int = 86_400_000) -> FenceOccupancy:
        """Inverse of :meth:`snapshot`."""
        doc = orjson.loads(blob)
        occ = cls(capacities, allowed_lateness_ms, memory_ms)
        occ.parked, occ.left, occ.ignored, occ._forgot = doc["parked"], doc["left"], doc["ignored"], doc["forgot"]
        occ.open = {z: opened("fence_over_capacity", z, t, t, zone_id=z, count=n, limit=cap)
                    for z, (t, n, cap) in doc["open"].items()}
        occ._buffer.hold(OccupancyDelta(*w) for w in doc["waiting"])
        occ._buffer.watermark, occ._buffer.max_seen, occ._buffer.late = doc["clock"]
        return occ
