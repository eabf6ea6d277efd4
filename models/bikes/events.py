"""What bike supervision emits: violations (open/close), GPS faults, decided parkings, and the partial
counts that the keyed-by-zone and keyed-by-operator stages sum (occupancy deltas, first-activity marks).

All are slotted dataclasses that ``orjson.dumps`` serializes as they are; treat them as immutable
(they are not frozen only because frozen construction is ~3x slower on this hot path). Every event carries
its own event time ``ts`` (epoch ms) and a deterministic ``event_id``, so sinks can de-duplicate.
"""

from __future__ import annotations

__all__ = [
    "VIOLATION_KINDS",
    "FAULT_KINDS",
    "Violation",
    "GpsFault",
    "OccupancyDelta",
    "FirstActive",
    "Parked",
    "Event",
    "opened",
    "closed",
]

from dataclasses import dataclass

VIOLATION_KINDS = (
    "no_parking", "outside_fence", "fence_over_capacity", "black_bike", "over_quota", "zombie",
)
FAULT_KINDS = ("impossible_jump", "outside_service_area")


@dataclass(slots=True)
class Violation:
    """A violation opening or closing (``action`` is ``"open"`` or ``"close"``).

    ``subject_id`` is the bike, the fence zone (``fence_over_capacity``) or the operator
    (``over_quota``). ``ts`` is when this event happened in event time: for an open, the moment the
    violation became reportable (e.g. lock time + grace); for a close, ``closed_ts``. ``duration_s``
    is the violation's age at ``ts``; ``time_to_clear_s`` (closes only) is ``closed_ts - opened_ts``.
    Bike parking violations carry where the bike locked (``lon``, ``lat``), the zone (no-parking
    zone, fence-required area, or for zombies the fence/zone it stands in) and ``distance_m`` to the
    nearest fence (None beyond the search radius); capacity and quota ones carry ``count`` and
    ``limit``; closes carry ``reason`` (``unlocked``, ``moved``, ``day_end``, ``under_capacity``).
    Build with :func:`opened` and :func:`closed`.

    Example
    -------
    >>> v = opened("no_parking", "MT-1", ts=1_300_000, opened_ts=1_000_000, operator="meituan", zone_id="NP-1")
    >>> v.event_id, v.duration_s
    ('no_parking:MT-1:1000000:open', 300.0)
    >>> c = closed(v, 1_600_000, "unlocked")
    >>> c.action, c.time_to_clear_s, c.reason
    ('close', 600.0, 'unlocked')
    """

    action: str
    kind: str
    subject_id: str
    ts: int
    opened_ts: int
    event_id: str
    duration_s: float
    operator: str | None = None
    zone_id: str | None = None
    closed_ts: int | None = None
    time_to_clear_s: float | None = None
    reason: str | None = None
    lon: float | None = None
    lat: float | None = None
    distance_m: float | None = None
    count: int | None = None
    limit: int | None = None
    reported_ts: int | None = None  # when the open was reported (an open's own ts; carried by its close)


def opened(
    kind: str,
    subject_id: str,
    ts: int,
    opened_ts: int,
    operator: str | None = None,
    zone_id: str | None = None,
    lon: float | None = None,
    lat: float | None = None,
    distance_m: float | None = None,
    count: int | None = None,
    limit: int | None = None,
) -> Violation:
    """An ``open`` event; ``ts`` is when it became reportable, ``opened_ts`` when it began."""
    return Violation(
        "open", kind, subject_id, ts, opened_ts, f"{kind}:{subject_id}:{opened_ts}:open",
        (ts - opened_ts) / 1000, operator, zone_id, None, None, None, lon, lat, distance_m, count, limit, ts,
    )


def closed(v: Violation, closed_ts: int, reason: str, count: int | None = None) -> Violation:
    """The ``close`` event of the violation opened by ``v``."""
    age = (closed_ts - v.opened_ts) / 1000
    return Violation(
        "close", v.kind, v.subject_id, closed_ts, v.opened_ts, f"{v.kind}:{v.subject_id}:{v.opened_ts}:close",
        age, v.operator, v.zone_id, closed_ts, age, reason, v.lon, v.lat, v.distance_m,
        v.count if count is None else count, v.limit, v.ts,
    )


@dataclass(slots=True)
class GpsFault:
    """A fix flagged as implausible: counted and flagged, not a violation.

    ``impossible_jump`` carries the implied ``speed_kmh`` and the jump ``distance_m``;
    ``outside_service_area`` is emitted when a bike's fixes leave every service area.
    """

    kind: str
    bike_id: str
    operator: str
    ts: int
    lon: float
    lat: float
    speed_kmh: float | None = None
    distance_m: float | None = None

    @property
    def event_id(self) -> str:
        return f"{self.kind}:{self.bike_id}:{self.ts}"


@dataclass(slots=True)
class OccupancyDelta:
    """A bike entering (+1) or leaving (-1) a fence; route by ``zone_id`` to ``FenceOccupancy``."""

    zone_id: str
    bike_id: str
    ts: int
    delta: int


@dataclass(slots=True)
class FirstActive:
    """A bike's first fix of a local ``day``; route by ``operator`` to ``FleetCounter``."""

    operator: str
    bike_id: str
    day: int
    ts: int


@dataclass(slots=True)
class Parked:
    """Where a parked bike's place was decided to be (with ``report_parkings``): one per parking.

    ``place`` is ``parking_fence``, ``no_parking``, ``outside_fence`` or ``free``; ``ts`` is when it
    was decided, ``parked_ts`` the lock time; ``distance_m`` to the nearest fence (None beyond the
    search radius) is the figure that tells GPS noise from parking discipline.
    """

    bike_id: str
    operator: str
    parked_ts: int
    ts: int
    place: str
    zone_id: str | None
    lon: float
    lat: float
    distance_m: float | None

    @property
    def event_id(self) -> str:
        return f"parked:{self.bike_id}:{self.parked_ts}"


Event = Violation | GpsFault | OccupancyDelta | FirstActive | Parked
