"""Alerts (open/close) and the incident reports they raise on ``incident.events``."""

from __future__ import annotations

__all__ = ["Alert", "subcategory_of", "incident_report", "incident_resolve", "case_id_of"]

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

#: Subcategory (``models/data/city_categories.csv``, category E21) of a threshold rule.
RULE_SUBCATEGORY = {"billboard_tilt": "E2101", "cover_open": "E2102", "water_level": "E2105",
                    "gas_warning": "E2106", "gas_alarm": "E2106", "site_noise": "E2107", "site_dust": "E2108"}
#: Subcategory of a model (anomaly) alert by sensor kind; manhole metrics refine it below.
KIND_SUBCATEGORY = {"billboard_tilt": "E2101", "manhole_cover": "E2102", "drainage_level": "E2105",
                    "gas": "E2106", "site_noise": "E2107", "site_dust": "E2108", "air_quality": "E2109",
                    "bridge_health": "E2110"}
_MANHOLE_METRIC = {"water_level_cm": "E2103", "gas_ppm": "E2104"}
OFFLINE_SUBCATEGORY = "E2111"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, as opened or closed. ``alert_id`` = sensor, condition and open time (deterministic).

    ``condition`` is a rule name, ``anomaly`` (the model) or ``offline``; ``source`` is ``rule:<name>``,
    ``model`` or ``watermark``. ``version`` is 1 on open and 2 on close (the sink keeps the newest).
    """

    sensor_id: str
    kind: str
    condition: str
    source: str
    metric: str
    value: float
    score: float
    threshold: float
    severity: str
    status: str
    opened_ms: int
    ts_ms: int
    subcategory: str
    lat: float | None = None
    lon: float | None = None
    closed_ms: int = 0

    @property
    def alert_id(self) -> str:
        return f"{self.sensor_id}|{self.condition}|{self.opened_ms}"

    @property
    def version(self) -> int:
        return 2 if self.status == "close" else 1

    def closed(self, ts_ms: int, value: float, score: float) -> Alert:
        """The close of this alert at ``ts_ms``."""
        return replace(self, status="close", ts_ms=ts_ms, closed_ms=ts_ms, value=value, score=score)

    def to_row(self, case_id: str) -> dict[str, Any]:
        """The ``sensor.alerts`` message (also the ClickHouse row)."""
        return {**asdict(self), "alert_id": self.alert_id, "version": self.version, "case_id": case_id,
                "lat": self.lat or 0.0, "lon": self.lon or 0.0}


def subcategory_of(kind: str, condition: str, metric: str) -> str:
    """E21xx subcategory of an alert.

    Example
    -------
    >>> subcategory_of("gas", "gas_alarm", "lel_pct"), subcategory_of("manhole_cover", "anomaly", "gas_ppm")
    ('E2106', 'E2104')
    """
    if condition == "offline":
        return OFFLINE_SUBCATEGORY
    if condition in RULE_SUBCATEGORY:
        return RULE_SUBCATEGORY[condition]
    if kind == "manhole_cover" and metric in _MANHOLE_METRIC:
        return _MANHOLE_METRIC[metric]
    return KIND_SUBCATEGORY.get(kind, OFFLINE_SUBCATEGORY)


def case_id_of(sensor_id: str, subcategory: str, opened_ms: int) -> str:
    """Deterministic case id of the incident opened by a sensor for a subcategory at ``opened_ms``.

    Example
    -------
    >>> case_id_of("TILT-0007", "E2101", 1795244400000)
    'SEN-...'
    """
    digest = hashlib.blake2b(f"{sensor_id}|{subcategory}|{opened_ms}".encode(), digest_size=8).hexdigest()
    return f"SEN-{digest}"


def incident_report(alert: Alert, case_id: str) -> dict[str, Any]:
    """The ``report`` event (channel ``sensor``) for an incident opened by ``alert``.

    Example
    -------
    >>> a = Alert("TILT-0007", "billboard_tilt", "billboard_tilt", "rule:billboard_tilt", "tilt_deg", 6.2, 1.0,
    ...           5.0, "critical", "open", 1795244400000, 1795244400000, "E2101", 24.47, 118.11)
    >>> ev = incident_report(a, "SEN-1")
    >>> ev["transition"], ev["channel"], ev["category"], ev["subcategory"], ev["ts"]
    ('report', 'sensor', 'E21', 'E2101', 1795244400000)
    """
    what = f"{alert.metric}={alert.value:g}" + (f" over {alert.threshold:g}" if alert.source.startswith("rule")
                                                 else f" anomaly score {alert.score:.3f}")
    return {"case_id": case_id, "ts": alert.opened_ms, "transition": "report", "channel": "sensor",
            "category": "E21", "subcategory": alert.subcategory, "lat": alert.lat, "lon": alert.lon,
            "text": f"{alert.kind} {alert.sensor_id}: {alert.condition} ({alert.severity}) {what}"}


def incident_resolve(case_id: str, ts_ms: int) -> dict[str, Any]:
    """The ``resolve`` event (自动结案) closing a sensor's incident when its last alert cleared.

    Example
    -------
    >>> incident_resolve("SEN-1", 1795244700000)
    {'case_id': 'SEN-1', 'ts': 1795244700000, 'transition': 'resolve', 'channel': 'sensor'}
    """
    return {"case_id": case_id, "ts": ts_ms, "transition": "resolve", "channel": "sensor"}
