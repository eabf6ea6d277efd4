"""Rows of the bike tables (``sinks/sql/002_bikes.sql``) and the internal messages between bike stages.

Output messages carry JSON arrays of row objects, one message per batch and partition (the JSON sinks
store arrays as rows). Each row carries ``t`` (its table) because violations, GPS faults and parkings
share a topic.

Internal messages from a supervisor partition to the keyed stages (``bike.occupancy``, ``bike.fleet``)
go to *every* partition of those topics, once per supervisor batch: ``{"src": p, "wm": watermark,
"items": [...]}``. The items are the ones keyed to that partition; the watermark promises that source
``p`` sends nothing older, so a keyed stage can order items from all sources by event time.
"""

from __future__ import annotations

__all__ = [
    "VIOLATION_COLUMNS", "FAULT_COLUMNS", "PARKING_COLUMNS", "OCCUPANCY_COLUMNS", "FLEET_COLUMNS",
    "violation_row", "fault_row", "parking_row", "occupancy_row", "fleet_row", "output_rows",
    "delta_item", "mark_item", "item_delta", "item_mark",
]

from typing import Any

from models.bikes import FirstActive, GpsFault, OccupancyDelta, Parked, Violation
from models.bikes.events import Event
from models.bikes.fleet import FleetDay
from models.bikes.occupancy import ZoneMinute

VIOLATION_COLUMNS = (
    "violation_id", "kind", "subject_id", "operator", "zone_id", "status", "opened_ms", "reported_ms",
    "closed_ms", "time_to_clear_s", "close_reason", "lon", "lat", "distance_m", "measured", "allowed", "version",
)
FAULT_COLUMNS = ("bike_id", "operator", "kind", "ts_ms", "lon", "lat", "speed_kmh", "distance_m")
PARKING_COLUMNS = ("bike_id", "operator", "parked_ms", "decided_ms", "place", "zone_id", "lon", "lat", "distance_m")
OCCUPANCY_COLUMNS = ("minute_ms", "zone_id", "zone_kind", "bikes", "peak", "capacity", "version")
FLEET_COLUMNS = ("day_num", "operator", "bikes", "quota", "version")


def violation_row(v: Violation) -> dict[str, Any]:
    """One violation's row; the close (version 2) replaces the open (version 1).

    Example
    -------
    >>> from models.bikes.events import opened, closed
    >>> o = opened("no_parking", "MT-1", ts=1_300_000, opened_ts=1_000_000, operator="meituan", zone_id="NP-1")
    >>> r = violation_row(closed(o, 1_600_000, "unlocked"))
    >>> r["violation_id"], r["status"], r["reported_ms"], r["time_to_clear_s"], r["version"]
    ('no_parking:MT-1:1000000', 'closed', 1300000, 600.0, 2)
    """
    is_open = v.action == "open"
    return {
        "t": "violation", "violation_id": f"{v.kind}:{v.subject_id}:{v.opened_ts}", "kind": v.kind,
        "subject_id": v.subject_id, "operator": v.operator or "", "zone_id": v.zone_id or "",
        "status": "open" if is_open else "closed", "opened_ms": v.opened_ts,
        "reported_ms": v.reported_ts, "closed_ms": 0 if is_open else v.ts,
        "time_to_clear_s": v.time_to_clear_s, "close_reason": v.reason or "", "lon": v.lon, "lat": v.lat,
        "distance_m": v.distance_m, "measured": v.count, "allowed": v.limit, "version": 1 if is_open else 2,
    }


def fault_row(f: GpsFault) -> dict[str, Any]:
    """One GPS fault's row."""
    return {"t": "fault", "bike_id": f.bike_id, "operator": f.operator, "kind": f.kind, "ts_ms": f.ts,
            "lon": f.lon, "lat": f.lat, "speed_kmh": f.speed_kmh, "distance_m": f.distance_m}


def parking_row(p: Parked) -> dict[str, Any]:
    """One decided parking's row (the distance to the nearest fence is the dashboard's histogram)."""
    return {"t": "parking", "bike_id": p.bike_id, "operator": p.operator, "parked_ms": p.parked_ts,
            "decided_ms": p.ts, "place": p.place, "zone_id": p.zone_id or "", "lon": p.lon, "lat": p.lat,
            "distance_m": p.distance_m}


def occupancy_row(m: ZoneMinute, kinds: dict[str, str], capacities: dict[str, int | None]) -> dict[str, Any]:
    """A zone's occupancy in a minute (the newest version wins)."""
    return {"minute_ms": m.minute_ts, "zone_id": m.zone_id, "zone_kind": kinds.get(m.zone_id, ""),
            "bikes": m.bikes, "peak": m.peak, "capacity": capacities.get(m.zone_id), "version": m.version}


def fleet_row(d: FleetDay) -> dict[str, Any]:
    """An operator's distinct active bikes on a local day so far (the count is the version)."""
    return {"day_num": d.day, "operator": d.operator, "bikes": d.bikes, "quota": d.quota, "version": d.bikes}


def output_rows(events: list[Event]) -> list[dict[str, Any]]:
    """Rows for ``bike.violations`` (violations and faults) and ``bike.parkings``, in event order."""
    rows = []
    for e in events:
        if isinstance(e, Violation):
            rows.append(violation_row(e))
        elif isinstance(e, GpsFault):
            rows.append(fault_row(e))
        elif isinstance(e, Parked):
            rows.append(parking_row(e))
    return rows


def delta_item(d: OccupancyDelta) -> list[Any]:
    """An occupancy delta as a compact message item (and its queue key in the keyed stage)."""
    return [d.ts, d.zone_id, d.delta, d.bike_id]


def item_delta(item: list[Any]) -> OccupancyDelta:
    return OccupancyDelta(item[1], item[3], item[0], item[2])


def mark_item(m: FirstActive) -> list[Any]:
    """A first-activity mark as a compact message item."""
    return [m.ts, m.operator, m.bike_id, m.day]


def item_mark(item: list[Any]) -> FirstActive:
    return FirstActive(item[1], item[2], item[3], item[0])
