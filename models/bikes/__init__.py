"""Shared-bike supervision: per-bike state and rules, and the keyed-by-fence / keyed-by-operator
stages that turn partial counts into capacity and quota violations.

Wiring (all pure; the stream layer only routes):

- fixes keyed by bike -> one :class:`BikeSupervisor` per partition: ``process(batch)`` per batch and
  ``advance_to(watermark)`` when the partition idles. It returns :class:`Violation` (bike subjects),
  :class:`GpsFault`, :class:`OccupancyDelta`, :class:`FirstActive` (and :class:`Parked` with
  ``report_parkings``), sorted by event time.
- :class:`OccupancyDelta` keyed by ``zone_id`` -> :class:`FenceOccupancy` -> ``fence_over_capacity``.
- :class:`FirstActive` keyed by ``operator`` -> :class:`FleetCounter` -> ``over_quota``.
- checkpoint per bike with ``BikeSupervisor.drain_changes()`` (bike id -> bytes) and restore with
  ``import_bikes``, or snapshot a whole supervisor with ``snapshot``/``restore``.
"""

from __future__ import annotations

__all__ = [
    "BikeSupervisor",
    "Event",
    "FenceOccupancy",
    "FirstActive",
    "FleetCounter",
    "GpsFault",
    "OccupancyDelta",
    "Parked",
    "SupervisionConfig",
    "Violation",
]

from models.bikes.config import SupervisionConfig
from models.bikes.events import Event, FirstActive, GpsFault, OccupancyDelta, Parked, Violation
from models.bikes.fleet import FleetCounter
from models.bikes.occupancy import FenceOccupancy
from models.bikes.supervisor import BikeSupervisor
