"""Shared-bike supervision: per-bike state and rules, and the keyed-by-fence / keyed-by-operator
stages that turn partial counts into capacity and quota violations."""

from __future__ import annotations

__all__ = [
    "BikeSupervisor",
    "Event",
    "FenceOccupancy",
    "FirstActive",
    "FleetCounter",
    "GpsFault",
    "OccupancyDelta",
    "SupervisionConfig",
    "Violation",
]

from models.bikes.config import SupervisionConfig
from models.bikes.events import Event, FirstActive, GpsFault, OccupancyDelta, Violation
from models.bikes.fleet import FleetCounter
from models.bikes.occupancy import FenceOccupancy
from models.bikes.supervisor import BikeSupervisor
