"""Bike supervision set up from the settings: the zones (GeoJSON, plus DCIC fences if given) and the rules.

Loaded once per process and shared by every pipeline built in it (the demo and tests build several).
A geography with any bad feature is refused at start-up, naming the features: a worker that silently
supervised with half its zones would be worse than one that does not start.
"""

from __future__ import annotations

__all__ = ["BikeSetup", "load_bike_setup", "supervision_config", "SAMPLE_GEOGRAPHY"]

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import replay
from citystream.config import Settings
from models.bikes import SupervisionConfig
from models.bikes.config import DAY_MS
from models.geo import Zone, ZoneIndex, load_dcic_fences, load_geojson

#: The bundled sample's zones (the default ``CITYSTREAM_GEOGRAPHY``).
SAMPLE_GEOGRAPHY = Path(replay.__file__).parent / "sample" / "geography.geojson"


@dataclass(frozen=True)
class BikeSetup:
    """What the bike agents need: the zone index, the rule settings, fence capacities and quotas.

    Example
    -------
    >>> setup = load_bike_setup(Settings())
    >>> setup.index.has("parking_fence"), setup.config.grace_ms, setup.kinds["FRA-XMD"]
    (True, 300000, 'fence_required_area')
    """

    index: ZoneIndex
    config: SupervisionConfig
    capacities: dict[str, int | None]
    quotas: dict[str, int]
    kinds: dict[str, str]


def supervision_config(settings: Settings) -> SupervisionConfig:
    """The rule settings of ``settings`` (lateness is the pipeline's allowed lateness). The pipeline
    also reports every decided parking and counts bikes in every zone kind, for the dashboards."""
    return SupervisionConfig(
        grace_ms=settings.bike_grace_s * 1000,
        allowed_lateness_ms=settings.allowed_lateness_s * 1000,
        fence_tolerance_m=settings.bike_fence_tolerance_m,
        no_parking_tolerance_m=settings.bike_no_parking_tolerance_m,
        move_threshold_m=settings.bike_move_threshold_m,
        confirm_parking=settings.bike_confirm_parking,
        zombie_after_ms=round(settings.bike_zombie_days * DAY_MS),
        max_speed_kmh=settings.bike_max_speed_kmh,
        registered_operators=frozenset(settings.bike_operators),
        unattributed_operator=settings.bike_unattributed_operator,
        quotas=dict(settings.bike_quotas),
        report_parkings=True,
        occupancy_all_zones=True,
    )


@lru_cache(maxsize=4)
def _zones(geography: Path, fences_csv: Path | None, fence_capacity: int) -> tuple[Zone, ...]:
    zones = load_geojson(geography).raise_if_rejected()
    if fences_csv is not None:
        zones += load_dcic_fences(fences_csv, capacity=fence_capacity).raise_if_rejected()
    return zones


@lru_cache(maxsize=4)
def _index(zones: tuple[Zone, ...]) -> ZoneIndex:
    return ZoneIndex(zones)


def load_bike_setup(settings: Settings) -> BikeSetup:
    """Load (once per process and geography) the zones named by ``settings`` and build the setup."""
    zones = _zones(settings.geography or SAMPLE_GEOGRAPHY, settings.fences_csv, settings.bike_fence_capacity)
    config = supervision_config(settings)
    return BikeSetup(
        index=_index(zones), config=config,
        capacities={z.zone_id: z.capacity for z in zones if z.kind == "parking_fence"},
        quotas=dict(config.quotas), kinds={z.zone_id: z.kind for z in zones},
    )
