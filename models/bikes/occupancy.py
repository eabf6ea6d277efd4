"""Keyed-by-zone stage: parked bikes per fence (or other zone) from the supervisors' occupancy deltas,
per-minute occupancy rows, and the ``fence_over_capacity`` violation (subject: the fence) while a fence
holds more than its capacity.

The bikes of one fence live in different bike partitions, so each supervisor only emits +1/-1
deltas; this stage, fed by a topic keyed by zone, sums them. It keeps the set of bikes per zone
and their recent departures rather than a bare count, so a re-delivered delta changes nothing.

State goes to a changelog per bike and zone (:meth:`FenceOccupancy.drain_entries`, layout in
:mod:`models.bikes.occupancy_entries`), so a state write costs the bikes that changed, not the zone's whole
set: a zone as large as a fence-required island holds thousands of bikes and a day of departures.
``export_zones``/``import_zones`` are the whole-zone form (snapshots, and the changelog entries of earlier
versions, still read).
"""

from __future__ import annotations

__all__ = ["FenceOccupancy", "ZoneMinute"]

from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import NamedTuple

import orjson

from models.bikes import occupancy_entries as entries_
from models.bikes.config import MINUTE_MS
from models.bikes.events import OccupancyDelta, Violation, closed, opened
from models.bikes.ordering import EventTimeBuffer

_NEVER = -(2**63)


def _order(d: OccupancyDelta) -> tuple[int, str, int, str]:
    return (d.ts, d.zone_id, d.delta, d.bike_id)


class ZoneMinute(NamedTuple):
    """Occupancy of a zone in one minute: bikes at its end (so far), the peak, and a version that
    grows with every change of the zone (the newest row of a minute wins)."""

    zone_id: str
    minute_ts: int
    bikes: int
    peak: int
    version: int


class FenceOccupancy:
    """Occupancy and over-capacity violations of fences (and occupancy of any other zone).

    Parameters
    ----------
    capacities
        Capacity per fence id; zones absent or with ``None`` are counted but never over capacity.
    allowed_lateness_ms
        Deltas are applied in event-time order once the newest seen is this much later (pass a huge
        value and drive the stage with :meth:`advance_to` alone, e.g. from upstream watermarks).
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
    >>> [tuple(m) for m in occ.drain_minutes()]  # minute 0 ends with 1 bike, after a peak of 2 (3rd change)
    [('F1', 0, 1, 2, 3)]
    """

    def __init__(self, capacities: Mapping[str, int | None], allowed_lateness_ms: int = 60_000,
                 memory_ms: int = 86_400_000) -> None:
        self.capacities = dict(capacities)
        self.allowed_lateness_ms = allowed_lateness_ms
        self.parked: dict[str, dict[str, int]] = {}  # zone -> bike -> since (ts)
        self.open: dict[str, Violation] = {}
        self.memory_ms = memory_ms
        self.left: dict[str, dict[str, int]] = {}  # zone -> bike -> when it left (recent)
        self.minutes: dict[str, list[int]] = {}  # zone -> [minute, peak, version]
        self.ignored = 0  # deltas that changed nothing (re-deliveries, stale)
        self.dirty: set[str] = set()  # zones changed since the last drain_entries
        # (zone, bike) -> its (since, left) at the last drain_entries, for the bikes changed since (the undo record)
        self.undo: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        self.seq = 0  # the sequence number of the next state write
        self.stale: set[bytes] = set()  # bike keys written empty: deleted by the next write, after its zone heads
        self.legacy: set[str] = set()  # zones restored from whole-zone entries: those keys go after the next write
        self._rows: dict[tuple[str, int], ZoneMinute] = {}  # the newest row per (zone, minute) since the last drain
        self._forgot = _NEVER
        self._buffer: EventTimeBuffer[OccupancyDelta] = EventTimeBuffer(_order, allowed_lateness_ms)

    @property
    def watermark(self) -> int:
        """Event time up to which deltas were applied."""
        return self._buffer.watermark

    @property
    def late(self) -> int:
        """Deltas that arrived behind the watermark (applied at once, out of order)."""
        return self._buffer.late

    def count(self, zone_id: str) -> int:
        """Bikes parked in a zone now (as of the applied deltas)."""
        return len(self.parked.get(zone_id, ()))

    def process(self, deltas: Iterable[OccupancyDelta]) -> list[Violation]:
        """Take deltas (any order, any partition) and return the violations that opened or closed."""
        return self._apply(self._buffer.push(deltas))

    def advance_to(self, watermark_ms: int) -> list[Violation]:
        """Apply the deltas up to ``watermark_ms``."""
        return self._apply(self._buffer.advance_to(watermark_ms))

    def _apply(self, deltas: list[OccupancyDelta]) -> list[Violation]:
        out: list[Violation] = []
        # All changes of one zone at one instant count together: a swap is never over capacity.
        for (ts, zone_id), group in groupby(deltas, key=lambda d: (d.ts, d.zone_id)):
            bikes = self.parked.setdefault(zone_id, {})
            left = self.left.setdefault(zone_id, {})
            before, changed = len(bikes), False
            for d in group:
                self._touch(zone_id, d.bike_id, bikes, left)
                if self._change(bikes, left, d):
                    changed = True
                else:
                    self.ignored += 1
            self.dirty.add(zone_id)
            n, cap, v = len(bikes), self.capacities.get(zone_id), self.open.get(zone_id)
            if changed:
                self._minute(zone_id, ts, before, n)
            if cap is not None and n > cap and v is None:
                v = self.open[zone_id] = opened(
                    "fence_over_capacity", zone_id, ts, ts, zone_id=zone_id, count=n, limit=cap)
                out.append(v)
            elif v is not None and (cap is None or n <= cap):
                out.append(closed(v, ts, "under_capacity", count=n))
                del self.open[zone_id]
        self._forget(self._buffer.watermark - self.memory_ms)
        return out

    def _minute(self, zone_id: str, ts: int, before: int, n: int) -> None:
        minute = ts - ts % MINUTE_MS
        m = self.minutes.get(zone_id)
        if m is None or m[0] != minute:
            m = self.minutes[zone_id] = [minute, max(before, n), (m[2] if m else 0) + 1]
        else:
            m[1], m[2] = max(m[1], n), m[2] + 1
        self._rows[(zone_id, minute)] = ZoneMinute(zone_id, minute, n, m[1], m[2])  # keeps its first place

    def drain_minutes(self) -> list[ZoneMinute]:
        """Occupancy rows of the changes applied since the last call: the newest of each zone and minute (its
        version is the highest, so the table keeps it over the others), in the order they first changed."""
        rows, self._rows = list(self._rows.values()), {}
        return rows

    def _touch(self, zone_id: str, bike_id: str, bikes: dict[str, int], left: dict[str, int]) -> None:
        """Note the bike's value before its first change since the last state write (its undo record)."""
        if (zone_id, bike_id) not in self.undo:
            self.undo[(zone_id, bike_id)] = (bikes.get(bike_id), left.get(bike_id))

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
        """Drop departure marks older than ``before``, rounded down to a quarter of the memory (so the marks kept
        are a function of the watermark alone: a stage restored from its changelog keeps the same ones)."""
        step = max(1, self.memory_ms // 4)
        before = before // step * step
        if before <= self._forgot:
            return
        self._forgot = before
        for zone_id, left in self.left.items():
            gone = [b for b, t in left.items() if t < before]
            bikes = self.parked.get(zone_id, {})
            for b in gone:
                self._touch(zone_id, b, bikes, left)
                del left[b]

    # -- per-zone state (a changelog keyed by zone) --------------------------------------------------
    def export_zones(self, zone_ids: Iterable[str]) -> dict[str, bytes]:
        """Self-contained bytes per zone: its bikes, recent departures, open violation, minute."""
        out = {}
        for z in zone_ids:
            v = self.open.get(z)
            out[z] = orjson.dumps({"parked": self.parked.get(z, {}), "left": self.left.get(z, {}),
                                   "open": None if v is None else [v.opened_ts, v.count, v.limit],
                                   "minute": self.minutes.get(z)})
        return out

    def drain_entries(self) -> list[tuple[bytes, bytes | None]]:
        """The changelog writes of the changes since the last call, in the order to write them: the changed
        bikes, then their zones' heads, then deletes (:mod:`models.bikes.occupancy_entries`)."""
        return entries_.drain(self)

    def import_entries(self, entries: Mapping[bytes, bytes]) -> None:
        """Load the entries of :meth:`drain_entries` (and whole-zone entries of earlier versions) into a fresh
        stage, on restore; a bike written by a state write whose zone head is missing (a crash in the middle of
        it) gets its value from before that write."""
        entries_.load(self, entries)

    def import_zones(self, entries: Mapping[str, bytes]) -> None:
        """Load zones exported by :meth:`export_zones` (into a fresh stage, on restore)."""
        for z, blob in entries.items():
            doc = orjson.loads(blob)
            self.parked[z], self.left[z] = doc["parked"], doc["left"]
            if doc["minute"] is not None:
                self.minutes[z] = doc["minute"]
            if doc["open"] is not None:
                t, n, cap = doc["open"]
                self.open[z] = opened("fence_over_capacity", z, t, t, zone_id=z, count=n, limit=cap)

    def snapshot(self) -> bytes:
        """Bikes per zone, open violations, minutes and waiting deltas, as bytes."""
        return orjson.dumps({
            "zones": {z: orjson.loads(b) for z, b in self.export_zones(sorted(
                set(self.parked) | set(self.left) | set(self.open) | set(self.minutes))).items()},
            "ignored": self.ignored, "forgot": self._forgot,
            "waiting": [[d.zone_id, d.bike_id, d.ts, d.delta] for d in self._buffer.items()],
            "clock": [self._buffer.watermark, self._buffer.max_seen, self._buffer.late],
        })

    @classmethod
    def restore(cls, capacities: Mapping[str, int | None], blob: bytes,
                allowed_lateness_ms: int = 60_000, memory_ms: int = 86_400_000) -> FenceOccupancy:
        """Inverse of :meth:`snapshot`."""
        doc = orjson.loads(blob)
        occ = cls(capacities, allowed_lateness_ms, memory_ms)
        occ.import_zones({z: orjson.dumps(d) for z, d in doc["zones"].items()})
        occ.ignored, occ._forgot = doc["ignored"], doc["forgot"]
        occ._buffer.hold(OccupancyDelta(*w) for w in doc["waiting"])
        occ._buffer.watermark, occ._buffer.max_seen, occ._buffer.late = doc["clock"]
        return occ
