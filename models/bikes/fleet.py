"""Keyed-by-operator stage: distinct active bikes per operator and local day, and ``over_quota``.

Each supervisor emits one :class:`~models.bikes.events.FirstActive` per bike and local day; this
stage, fed by a topic keyed by operator, keeps the set of bike ids per (operator, day), so a
re-delivered mark changes nothing. ``over_quota`` (subject: the operator) opens when the count first
exceeds the quota, with ``opened_ts`` the event time of the first bike over it, and closes at the end
of the local day (reason ``day_end``). State changes come out per key (one per active bike and day,
one per open violation: ``drain_changes``), so a changelog holds them without rewriting whole days.
"""

from __future__ import annotations

__all__ = ["FleetCounter", "FleetDay"]

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import orjson

from models.bikes.config import DAY_MS
from models.bikes.events import FirstActive, Violation, closed, opened
from models.bikes.ordering import EventTimeBuffer


def _order(m: FirstActive) -> tuple[int, str, str]:
    return (m.ts, m.operator, m.bike_id)


class FleetDay(NamedTuple):
    """Distinct active bikes of an operator on a local day so far (the count is its own version)."""

    operator: str
    day: int
    bikes: int
    quota: int | None


class FleetCounter:
    """Distinct active bikes per operator per local day, and over-quota violations.

    Parameters
    ----------
    quotas
        Quota per operator (distinct active bikes per local day); others are counted, never over.
    utc_offset_ms
        Offset of the local day (must match the supervisors' ``SupervisionConfig.utc_offset_ms``).
    allowed_lateness_ms
        Marks are applied in event-time order once the newest seen is this much later.
    keep_days
        Days kept after they end (for late marks and dashboards), then forgotten.

    Example
    -------
    >>> fc = FleetCounter({"meituan": 1}, utc_offset_ms=0, allowed_lateness_ms=0)
    >>> v = fc.process([FirstActive("meituan", "a", 0, 100), FirstActive("meituan", "b", 0, 200)])[0]
    >>> v.kind, v.subject_id, v.opened_ts, v.count, v.limit
    ('over_quota', 'meituan', 200, 2, 1)
    >>> c = fc.advance_to(86_400_000)[0]
    >>> c.action, c.closed_ts, c.reason, fc.counts(0)
    ('close', 86400000, 'day_end', {'meituan': 2})
    >>> fc.drain_days()[-1], len(fc.drain_changes())
    (FleetDay(operator='meituan', day=0, bikes=2, quota=1), 3)
    """

    def __init__(self, quotas: Mapping[str, int], utc_offset_ms: int = 8 * 3_600_000,
                 allowed_lateness_ms: int = 60_000, keep_days: int = 2) -> None:
        self.quotas = dict(quotas)
        self.utc_offset_ms = utc_offset_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.keep_days = keep_days
        self.active: dict[tuple[str, int], set[str]] = {}
        self.open: dict[tuple[str, int], Violation] = {}
        self._buffer: EventTimeBuffer[FirstActive] = EventTimeBuffer(_order, allowed_lateness_ms)
        self._changes: dict[bytes, bytes | None] = {}
        self._days: dict[tuple[str, int], FleetDay] = {}  # the newest row per (operator, day) since the last drain

    @property
    def watermark(self) -> int:
        """Event time up to which marks were applied."""
        return self._buffer.watermark

    @property
    def late(self) -> int:
        """Marks that arrived behind the watermark (applied at once)."""
        return self._buffer.late

    def _day_end(self, day: int) -> int:
        return (day + 1) * DAY_MS - self.utc_offset_ms

    def counts(self, day: int) -> dict[str, int]:
        """Distinct active bikes per operator on local ``day``."""
        return {op: len(b) for (op, d), b in sorted(self.active.items()) if d == day}

    def process(self, marks: Iterable[FirstActive]) -> list[Violation]:
        """Take first-activity marks (any order) and return the violations that opened or closed."""
        out = self._apply(self._buffer.push(marks))
        return out + self._close_days(self._buffer.watermark)

    def advance_to(self, watermark_ms: int) -> list[Violation]:
        """Apply marks up to ``watermark_ms`` and close the days that ended by then."""
        out = self._apply(self._buffer.advance_to(watermark_ms))
        return out + self._close_days(self._buffer.watermark)

    def _apply(self, marks: list[FirstActive]) -> list[Violation]:
        out: list[Violation] = []
        for m in marks:
            key = (m.operator, m.day)
            bikes = self.active.setdefault(key, set())
            if m.bike_id in bikes:
                continue
            bikes.add(m.bike_id)
            quota = self.quotas.get(m.operator)
            self._changes[orjson.dumps([m.operator, m.day, m.bike_id])] = b"1"
            self._days[key] = FleetDay(m.operator, m.day, len(bikes), quota)  # keeps its first place
            if quota is not None and len(bikes) > quota and key not in self.open:
                v = opened("over_quota", m.operator, m.ts, m.ts, operator=m.operator,
                           count=len(bikes), limit=quota)
                self.open[key] = v
                self._changes[orjson.dumps(["~open", m.operator, m.day])] = orjson.dumps([m.ts, len(bikes)])
                out.append(v)
        return out

    def _close_days(self, watermark: int) -> list[Violation]:
        out = []
        for key in sorted(k for k in self.open if self._day_end(k[1]) <= watermark):
            v = self.open.pop(key)
            out.append(closed(v, self._day_end(key[1]), "day_end", count=len(self.active[key])))
            self._changes[orjson.dumps(["~open", key[0], key[1]])] = None
        horizon = watermark - self.keep_days * DAY_MS
        for key in [k for k in self.active if self._day_end(k[1]) <= horizon and k not in self.open]:
            for b in sorted(self.active.pop(key)):
                self._changes[orjson.dumps([key[0], key[1], b])] = None
        return out

    def drain_days(self) -> list[FleetDay]:
        """Count rows of the marks applied since the last call: the newest per operator and day, in the order
        the days first changed. A row's count is its version (the table keeps the highest), so the rows between
        two calls that the last one replaces are not sent at all: one per active bike otherwise.

        >>> fc = FleetCounter({}, utc_offset_ms=0, allowed_lateness_ms=0)
        >>> _ = fc.process([FirstActive("qingju", "q", 0, 50), FirstActive("meituan", "a", 0, 100),
        ...                 FirstActive("qingju", "r", 0, 200)])
        >>> [(d.operator, d.bikes) for d in fc.drain_days()], fc.drain_days()
        ([('qingju', 2), ('meituan', 1)], [])
        """
        rows, self._days = list(self._days.values()), {}
        return rows

    def drain_changes(self) -> dict[bytes, bytes | None]:
        """State entries changed since the last call: ``[operator, day, bike]`` -> ``b"1"`` per active
        bike and ``["~open", operator, day]`` -> ``[opened_ts, count]`` per open violation (JSON keys);
        None deletes."""
        changes, self._changes = self._changes, {}
        return changes

    def import_entries(self, entries: Mapping[bytes, bytes]) -> None:
        """Load entries of :meth:`drain_changes` (into a fresh counter, on restore)."""
        for k, v in entries.items():
            key = orjson.loads(k)
            if key[0] == "~open" and len(key) == 3:
                t, n = orjson.loads(v)
                self.open[(key[1], key[2])] = opened("over_quota", key[1], t, t, operator=key[1], count=n,
                                                     limit=self.quotas.get(key[1]))
            else:
                self.active.setdefault((key[0], key[1]), set()).add(key[2])

    def snapshot(self) -> bytes:
        """Active sets, open violations and waiting marks, as bytes."""
        return orjson.dumps({
            "active": [[op, d, sorted(b)] for (op, d), b in sorted(self.active.items())],
            "open": [[op, d, v.opened_ts, v.count] for (op, d), v in sorted(self.open.items())],
            "waiting": [[m.operator, m.bike_id, m.day, m.ts] for m in self._buffer.items()],
            "clock": [self._buffer.watermark, self._buffer.max_seen, self._buffer.late],
        })

    @classmethod
    def restore(cls, blob: bytes, quotas: Mapping[str, int], utc_offset_ms: int = 8 * 3_600_000,
                allowed_lateness_ms: int = 60_000, keep_days: int = 2) -> FleetCounter:
        """Inverse of :meth:`snapshot`."""
        doc = orjson.loads(blob)
        fc = cls(quotas, utc_offset_ms, allowed_lateness_ms, keep_days)
        fc.active = {(op, d): set(b) for op, d, b in doc["active"]}
        fc.open = {(op, d): opened("over_quota", op, t, t, operator=op, count=n, limit=fc.quotas.get(op))
                   for op, d, t, n in doc["open"]}
        fc._buffer.hold(FirstActive(*m) for m in doc["waiting"])
        fc._buffer.watermark, fc._buffer.max_seen, fc._buffer.late = doc["clock"]
        return fc
