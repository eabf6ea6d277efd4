"""Build the incident stream's pure parts from the settings: one place for the agents, the evaluation
harness and the benchmark, so all three run the same configuration."""

from __future__ import annotations

__all__ = ["SAMPLE_GEOGRAPHY", "IncidentSetup", "incident_setup"]

import logging
from dataclasses import dataclass
from pathlib import Path

from citystream.config import DEV_PHONE_HASH_KEY, Settings
from models.geo.zones import load_geojson
from models.incidents.attribution import Attributor
from models.incidents.deadlines import DeadlinePolicy
from models.incidents.flow import CaseFlow
from models.incidents.linking import ReportLinker
from models.incidents.taxonomy import default_categories

log = logging.getLogger(__name__)

_warned: list[bool] = []  # the development-key warning is logged once per process

#: Geography used when ``CITYSTREAM_GEOGRAPHY`` is not set.
SAMPLE_GEOGRAPHY = Path(__file__).resolve().parents[2] / "replay" / "sample" / "geography.geojson"


@dataclass(frozen=True)
class IncidentSetup:
    """Factories of the per-partition case flows and report linkers, configured from :class:`Settings`."""

    attributor: Attributor
    policy: DeadlinePolicy
    phone_key: bytes
    lateness_ms: int
    retention_ms: int
    partitions: int
    match_on: str
    duplicate_m: float
    duplicate_window_ms: int

    def case_flow(self, partition: int) -> CaseFlow:
        """A fresh :class:`CaseFlow` for ``partition``."""
        return CaseFlow(partition, self.attributor, self.phone_key, policy=self.policy, lateness_ms=self.lateness_ms,
                        retention_ms=self.retention_ms, match_on=self.match_on)  # fmt: skip

    def report_linker(self, partition: int) -> ReportLinker:
        """A fresh :class:`ReportLinker` for ``partition`` of ``incident.reports``."""
        return ReportLinker(partition, self.partitions, self.duplicate_m, self.duplicate_window_ms, self.match_on)


def incident_setup(settings: Settings) -> IncidentSetup:
    """Load the geography and build the policy; raises ``ValueError`` on a bad deadline override."""
    path = settings.geography or SAMPLE_GEOGRAPHY
    result = load_geojson(path)
    if result.rejected:
        log.warning("geography %s: %d feature(s) rejected, first: %s", path, len(result.rejected), result.rejected[0])
    categories = default_categories()
    key = settings.phone_hash_key.get_secret_value()
    if key == DEV_PHONE_HASH_KEY and not _warned:
        _warned.append(True)
        log.warning("CITYSTREAM_PHONE_HASH_KEY is the development default: set a secret key in production")
    return IncidentSetup(
        attributor=Attributor(result.zones, settings.zone_cell_m),
        policy=DeadlinePolicy.from_seconds(settings.incident_deadlines_s, categories),
        phone_key=key.encode(),
        lateness_ms=settings.allowed_lateness_s * 1000,
        retention_ms=settings.incident_retention_s * 1000,
        partitions=settings.partitions,
        match_on=settings.incident_duplicate_match,
        duplicate_m=settings.incident_duplicate_m,
        duplicate_window_ms=settings.incident_duplicate_window_s * 1000,
    )
