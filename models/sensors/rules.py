"""Hard threshold rules per sensor kind, with hysteresis, from regulations or configuration.

* billboard tilt over a configured angle (5° by default);
* manhole cover open;
* drainage level over the warning line (1.2 m by default);
* gas: 10 % of the lower explosive limit is a warning, 20 % an alarm;
* construction noise over 70 dB(A) by day and 55 dB(A) at night (06:00-22:00 Asia/Shanghai), the
  construction-site boundary limits of GB 12523-2011;
* construction dust (PM10) over a configured limit (150 µg/m³ by default).

A rule opens on the first reading over ``limit`` (alerted within one reading) and closes only after
``close_after`` consecutive readings at or below ``limit - band``, so a value hovering at the limit does
not flap.
"""

from __future__ import annotations

__all__ = ["ThresholdRule", "default_rules", "limit_at"]

from dataclasses import dataclass

from models.anomaly.timebase import local_hour


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """One threshold on ``metric`` of ``kind``; ``limit`` may vary by time of day (see :func:`limit_at`)."""

    name: str
    kind: str
    metric: str
    limit: float
    band: float
    severity: str
    night_limit: float | None = None
    close_after: int = 2

    def limit_at(self, ts_ms: int) -> float:
        """The limit in force at ``ts_ms``."""
        return limit_at(self.limit, self.night_limit, ts_ms)

    def breached(self, value: float, ts_ms: int) -> bool:
        """True when ``value`` is over the limit."""
        return value > self.limit_at(ts_ms)

    def cleared(self, value: float, ts_ms: int) -> bool:
        """True when ``value`` is back under the limit by the hysteresis band."""
        return value <= self.limit_at(ts_ms) - self.band


def limit_at(day: float, night: float | None, ts_ms: int) -> float:
    """``day`` from 06:00 to 22:00 Asia/Shanghai, else ``night`` (when given).

    Example
    -------
    >>> limit_at(70.0, 55.0, 0), limit_at(70.0, 55.0, 15 * 3_600_000)  # 08:00 and 23:00 in Xiamen
    (70.0, 55.0)
    """
    if night is None:
        return day
    return day if 6 <= local_hour(ts_ms) < 22 else night


def default_rules(tilt_deg: float = 5.0, drainage_warning_m: float = 1.2, dust_pm10_ugm3: float = 150.0,
                  ) -> dict[str, list[ThresholdRule]]:
    """The rules of every kind, by kind.

    Example
    -------
    >>> r = default_rules()["site_noise"][0]
    >>> r.breached(60.0, 0), r.breached(60.0, 15 * 3_600_000)
    (False, True)
    >>> [x.name for x in default_rules()["gas"]]
    ['gas_warning', 'gas_alarm']
    """
    R = ThresholdRule
    return {
        "billboard_tilt": [R("billboard_tilt", "billboard_tilt", "tilt_deg", tilt_deg, 0.5, "critical")],
        "manhole_cover": [R("cover_open", "manhole_cover", "cover_open", 0.5, 0.5, "critical")],
        "drainage_level": [R("water_level", "drainage_level", "level_m", drainage_warning_m, 0.05, "major")],
        "gas": [R("gas_warning", "gas", "lel_pct", 10.0, 2.0, "major"),
                R("gas_alarm", "gas", "lel_pct", 20.0, 2.0, "critical")],
        "site_noise": [R("site_noise", "site_noise", "laeq_db", 70.0, 2.0, "minor", night_limit=55.0)],
        "site_dust": [R("site_dust", "site_dust", "pm10_ugm3", dust_pm10_ugm3, 15.0, "minor")],
        "air_quality": [],
        "bridge_health": [],
    }
