"""Hard threshold rules per sensor kind, with hysteresis, from regulations or configuration.

* billboard tilt over a configured angle (5° by default; signed tilt counts by its size);
* manhole cover open;
* drainage level over the warning line (1.2 m by default);
* gas: 10 % of the lower explosive limit is a warning, 20 % an alarm (critical);
* construction noise over 70 dB(A) by day and 55 dB(A) at night (day 06:00-22:00 Asia/Shanghai), the
  construction-site boundary limits of GB 12523-2011;
* construction dust (PM10) over a configured limit (150 µg/m³ by default).

A :class:`RuleSpec` is configuration (shared by all sensors of a kind): it opens on the first reading above
``on`` (alerted within one reading) and closes only after ``close_after`` consecutive readings at or below
``off``, so a value hovering around the limit does not flap. A :class:`ThresholdRule` is one sensor's state of
one rule, in river's API: ``score_one(x)`` (pure: the reading over the limit in force, ≥ 1 breaches) and
``learn_one(x)`` (moves the open/closed state); :meth:`ThresholdRule.update` learns and names the
transition, and :func:`rule_events` turns transitions into :class:`~models.sensors.alerts.Alert` s.
"""

from __future__ import annotations

__all__ = ["ThresholdConfig", "RuleSpec", "ThresholdRule", "default_rules", "rules_for", "rule_events",
           "limit_at"]

from dataclasses import dataclass
from typing import Any

from models.anomaly.timebase import local_hour, ts_ms
from models.sensors.alerts import Alert, subcategory_of


@dataclass(frozen=True, slots=True)
class ThresholdConfig:
    """The configurable limits (defaults from the regulations above); ``*_off`` close the hysteresis."""

    tilt_deg: float = 5.0
    tilt_off_deg: float = 4.5
    drainage_warning_m: float = 1.2
    drainage_off_m: float = 1.15
    gas_warning_pct: float = 10.0
    gas_alarm_pct: float = 20.0
    gas_band_pct: float = 2.0
    noise_day_db: float = 70.0
    noise_night_db: float = 55.0
    noise_band_db: float = 2.0
    dust_pm10_ugm3: float = 150.0
    dust_band_ugm3: float = 15.0
    close_after: int = 2


def limit_at(day: float, night: float | None, ts: int) -> float:
    """``day`` from 06:00 to 22:00 Asia/Shanghai (UTC+8, no daylight saving), else ``night`` (when given).

    Example
    -------
    >>> limit_at(70.0, 55.0, 0), limit_at(70.0, 55.0, 15 * 3_600_000)  # 08:00 and 23:00 in Xiamen
    (70.0, 55.0)
    >>> limit_at(70.0, 55.0, 22 * 3_600_000 - 1), limit_at(70.0, 55.0, 22 * 3_600_000)  # 05:59:59.999, 06:00
    (55.0, 70.0)
    """
    if night is None:
        return day
    return day if 6 <= local_hour(ts) < 22 else night


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One threshold on ``metric`` of ``kind``: open above ``on``, close at or below ``off``.

    ``night_on``/``night_off`` replace them from 22:00 to 06:00 local time; ``absolute`` compares ``|value|``.
    """

    name: str
    kind: str
    metric: str
    on: float
    off: float
    severity: str
    night_on: float | None = None
    night_off: float | None = None
    absolute: bool = False
    close_after: int = 2

    @property
    def limit(self) -> float:
        return self.on

    def limit_at(self, ts: int) -> float:
        """The opening limit in force at ``ts`` (epoch ms)."""
        return limit_at(self.on, self.night_on, ts)

    def off_at(self, ts: int) -> float:
        """The closing level in force at ``ts``."""
        return limit_at(self.off, self.night_off, ts)

    def breached(self, value: float, ts: int) -> bool:
        """True when ``value`` is over the limit."""
        return (abs(value) if self.absolute else value) > self.limit_at(ts)

    def cleared(self, value: float, ts: int) -> bool:
        """True when ``value`` is back at or below the closing level."""
        return (abs(value) if self.absolute else value) <= self.off_at(ts)


class ThresholdRule:
    """One sensor's state of one rule (river-style: ``score_one`` is pure, ``learn_one`` moves the state).

    Example
    -------
    >>> r = ThresholdRule(default_rules()["billboard_tilt"][0])
    >>> [r.update({"ts": 30_000 * i, "tilt_deg": v}) for i, v in enumerate([1.0, 5.2, 4.9, 5.1, 4.4, 4.3])]
    [None, 'open', None, None, None, 'close']
    >>> r.score_one({"ts": 0, "tilt_deg": 6.0}), r.is_open
    (1.2, False)
    """

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.is_open = False
        self.calm = 0  # readings in a row at or below the closing level while open
        self.opened_ms: int | None = None

    def score_one(self, x: dict[str, Any]) -> float:
        """The reading over the limit in force (≥ 1 breaches; 0 without the metric)."""
        v = x.get(self.spec.metric)
        if v is None:
            return 0.0
        limit = self.spec.limit_at(ts_ms(x))
        v = abs(v) if self.spec.absolute else v
        return v / limit if limit > 0 else float(v > limit)

    def transition(self, x: dict[str, Any]) -> str | None:
        """``"open"``, ``"close"`` or None: what learning ``x`` would do (pure)."""
        v = x.get(self.spec.metric)
        if v is None:
            return None
        t = ts_ms(x)
        if not self.is_open:
            return "open" if self.spec.breached(v, t) else None
        if self.spec.cleared(v, t) and self.calm + 1 >= self.spec.close_after:
            return "close"
        return None

    def learn_one(self, x: dict[str, Any]) -> None:
        """Move the state with reading ``x``."""
        v = x.get(self.spec.metric)
        if v is None:
            return
        t = ts_ms(x)
        if not self.is_open:
            if self.spec.breached(v, t):
                self.is_open, self.calm, self.opened_ms = True, 0, t
        elif self.spec.cleared(v, t):
            self.calm += 1
            if self.calm >= self.spec.close_after:
                self.is_open, self.calm, self.opened_ms = False, 0, None
        else:
            self.calm = 0

    def update(self, x: dict[str, Any]) -> str | None:
        """Learn ``x`` and return its transition (``"open"``, ``"close"`` or None)."""
        what = self.transition(x)
        self.learn_one(x)
        return what


def default_rules(cfg: ThresholdConfig | None = None) -> dict[str, list[RuleSpec]]:
    """The rule specs of every kind, by kind.

    Example
    -------
    >>> r = default_rules()["site_noise"][0]
    >>> r.breached(60.0, 0), r.breached(60.0, 15 * 3_600_000)
    (False, True)
    >>> [(x.name, x.severity) for x in default_rules()["gas"]]
    [('gas_warning', 'warning'), ('gas_alarm', 'critical')]
    """
    c = cfg or ThresholdConfig()
    S = RuleSpec
    n = c.close_after
    return {
        "billboard_tilt": [S("billboard_tilt", "billboard_tilt", "tilt_deg", c.tilt_deg, c.tilt_off_deg, "critical",
                             absolute=True, close_after=n)],
        "manhole_cover": [S("cover_open", "manhole_cover", "cover_open", 0.5, 0.0, "critical", close_after=n)],
        "drainage_level": [S("water_level", "drainage_level", "level_m", c.drainage_warning_m, c.drainage_off_m,
                             "warning", close_after=n)],
        "gas": [S("gas_warning", "gas", "lel_pct", c.gas_warning_pct, c.gas_warning_pct - c.gas_band_pct, "warning",
                  close_after=n),
                S("gas_alarm", "gas", "lel_pct", c.gas_alarm_pct, c.gas_alarm_pct - c.gas_band_pct, "critical",
                  close_after=n)],
        "site_noise": [S("site_noise", "site_noise", "laeq_db", c.noise_day_db, c.noise_day_db - c.noise_band_db,
                         "warning", night_on=c.noise_night_db, night_off=c.noise_night_db - c.noise_band_db,
                         close_after=n)],
        "site_dust": [S("site_dust", "site_dust", "pm10_ugm3", c.dust_pm10_ugm3, c.dust_pm10_ugm3 - c.dust_band_ugm3,
                        "warning", close_after=n)],
        "air_quality": [],
        "bridge_health": [],
    }  # fmt: skip


def rules_for(kind: str, specs: dict[str, list[RuleSpec]] | None = None) -> list[ThresholdRule]:
    """Fresh rule states for one sensor of ``kind``."""
    return [ThresholdRule(s) for s in (specs if specs is not None else default_rules()).get(kind, [])]


def rule_events(rules: list[ThresholdRule], sensor_id: str, x: dict[str, Any], lat: float | None = None,
                lon: float | None = None) -> list[Alert]:
    """Learn reading ``x`` on every rule of one sensor; the open/close :class:`Alert` s it causes.

    Example
    -------
    >>> rules = rules_for("gas")
    >>> evs = [e for i, v in enumerate([1.0, 12.0, 25.0, 5.0, 5.0])
    ...        for e in rule_events(rules, "GAS-1", {"ts": 30_000 * i, "lel_pct": v})]
    >>> [(e.condition, e.status, e.severity, e.ts_ms) for e in evs]  # doctest: +NORMALIZE_WHITESPACE
    [('gas_warning', 'open', 'warning', 30000), ('gas_alarm', 'open', 'critical', 60000),
     ('gas_warning', 'close', 'warning', 120000), ('gas_alarm', 'close', 'critical', 120000)]
    """
    out = []
    t = ts_ms(x)
    for r in rules:
        opened = r.opened_ms
        what = r.update(x)
        if what is None:
            continue
        s = r.spec
        v = float(x[s.metric])
        out.append(Alert(sensor_id, s.kind, s.name, f"rule:{s.name}", s.metric, v, r.score_one(x), s.limit_at(t),
                         s.severity, what, t if what == "open" else int(opened or t), t,
                         subcategory_of(s.kind, s.name, s.metric), lat, lon, t if what == "close" else 0))
    return out
