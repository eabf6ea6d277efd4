"""Agents of the bikes domain: shared-bike supervision (see docs/architecture.md, "Bike supervision").

Stream role: ``supervise_bikes`` (per-bike rules on ``bike.fixes``), ``count_parked`` (per-zone occupancy
and fences over capacity, on ``bike.occupancy``) and ``count_fleet`` (distinct active bikes per operator
and day, and fleets over quota, on ``bike.fleet``). Sink role: the five bike tables. The zones are loaded
once per process, when the first pipeline registers.
"""

from __future__ import annotations

__all__ = ["register"]

from typing import Any

from models.bikes import FenceOccupancy, FleetCounter
from streams.agents.bikes_geo import load_bike_setup
from streams.agents.bikes_keyed import KeyedStage, register_keyed
from streams.agents.bikes_rows import fleet_row, item_delta, item_mark, occupancy_row
from streams.agents.bikes_sinks import register_sinks
from streams.agents.bikes_supervise import register_supervise
from streams.app import Pipeline

#: The keyed stages apply items only as far as every source's watermark allows (never on their own).
_NEVER_ON_THEIR_OWN = 1 << 62


def register(pipe: Pipeline) -> None:
    """Add this domain's agents for the pipeline's role."""
    if pipe.runs_sinks:
        register_sinks(pipe)
    if not pipe.runs_streams:
        return
    setup = load_bike_setup(pipe.settings)
    cfg = setup.config
    register_supervise(pipe, setup)

    def zone_changes(m: FenceOccupancy) -> list[tuple[bytes, bytes | None]]:
        return m.drain_entries()  # per bike and zone, in the order to write (models/bikes/occupancy_entries.py)

    def zone_restore(m: FenceOccupancy, entries: dict[bytes, bytes]) -> None:
        m.import_entries(entries)

    def zone_rows(m: FenceOccupancy) -> list[dict[str, Any]]:
        return [occupancy_row(r, setup.kinds, setup.capacities) for r in m.drain_minutes()]

    register_keyed(pipe, KeyedStage(
        "count_parked", "bike.occupancy", "bike.zone-occupancy",
        lambda: FenceOccupancy(setup.capacities, allowed_lateness_ms=_NEVER_ON_THEIR_OWN),
        item_delta, zone_changes, zone_restore, zone_rows,
    ))

    def fleet_changes(m: FleetCounter) -> list[tuple[bytes, bytes | None]]:
        return sorted(m.drain_changes().items())

    def fleet_restore(m: FleetCounter, entries: dict[bytes, bytes]) -> None:
        m.import_entries(entries)

    def fleet_rows(m: FleetCounter) -> list[dict[str, Any]]:
        return [fleet_row(d) for d in m.drain_days()]

    register_keyed(pipe, KeyedStage(
        "count_fleet", "bike.fleet", "bike.fleet-day",
        lambda: FleetCounter(setup.quotas, cfg.utc_offset_ms, allowed_lateness_ms=_NEVER_ON_THEIR_OWN),
        item_mark, fleet_changes, fleet_restore, fleet_rows,
    ))
