"""Per-sensor monitor: rules with hysteresis, the anomaly model with debounce, dropouts, and incidents.

:class:`SensorMonitor` holds everything one sensor needs (pickled per sensor as the agent's state):
``process(reading)`` scores the reading (before learning it) and returns the alert updates it causes;
``check_offline(watermark_ms)`` opens the ``offline`` alert once event time passed the last reading by
``offline_k`` learned intervals. Alerts of one subcategory share one incident: the first open alert of a
(sensor, subcategory) opens it (a ``report`` event), later ones attach to it, and when the last of them
closes the (sensor, subcategory) is free again. Closing emits nothing on ``incident.events``: handling,
verifying and closing a case are people's transitions (``docs/architecture.md``).
"""

from __future__ import annotations

__all__ = ["SensorMonitor", "MonitorConfig", "Update"]

from dataclasses import dataclass, field
from typing import Any

from models.anomaly import make_detector
from models.sensors.alerts import (
    Alert,
    case_id_of,
    incident_report,
    incident_resolve,
    subcategory_of,
)
from models.sensors.kinds import Reading
from models.sensors.rules import RuleSpec, ThresholdRule, default_rules, rules_for


@dataclass(frozen=True)
class MonitorConfig:
    """Alerting knobs: model ``open_score``/``close_score`` with ``close_after`` readings of debounce, the
    offline rule (``offline_k`` intervals, at least ``offline_min_s``), and detector parameters."""

    open_score: float = 0.9
    close_score: float = 0.5
    close_after: int = 10
    offline_k: float = 5.0
    offline_min_s: float = 300.0
    rules: dict[str, list[RuleSpec]] = field(default_factory=default_rules)
    detector_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Update:
    """What one reading (or watermark) caused: the score, alert updates and incident reports."""

    score: float | None = None
    alerts: list[tuple[Alert, str]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)


class SensorMonitor:
    """State of one sensor.

    Example
    -------
    >>> from models.sensors.kinds import Reading
    >>> m = SensorMonitor("TILT-1", "billboard_tilt")
    >>> cfg = MonitorConfig()
    >>> ups = [m.process(Reading("TILT-1", "billboard_tilt", 30_000 * i, 24.4, 118.1, {"tilt_deg": v}), cfg)
    ...        for i, v in enumerate([0.8, 6.1, 6.3, 4.2, 4.1])]
    >>> [(a.condition, a.status) for u in ups for a, _ in u.alerts]
    [('billboard_tilt', 'open'), ('billboard_tilt', 'close')]
    >>> ups[1].incidents[0]["subcategory"], ups[4].incidents[0]["transition"], len(m.open)
    ('E2101', 'resolve', 0)
    """

    def __init__(self, sensor_id: str, kind: str, seed: int = 0, **detector_params: Any) -> None:
        self.sensor_id, self.kind = sensor_id, kind
        self.detector = make_detector(kind, seed=seed, **detector_params)
        self.lat: float | None = None
        self.lon: float | None = None
        self.last_ms = -1
        self.open: dict[str, Alert] = {}      # condition → open alert
        self.calm: dict[str, int] = {}        # condition → readings in a row under the close level
        self.cases: dict[str, tuple[str, int]] = {}  # subcategory → (case id, open alerts on it)
        self.rules: list[ThresholdRule] | None = None  # this sensor's rule states (from the config's specs)

    def _open(self, up: Update, alert: Alert) -> None:
        self.open[alert.condition] = alert
        self.calm[alert.condition] = 0
        case = self.cases.get(alert.subcategory)
        if case is None:
            case = (case_id_of(self.sensor_id, alert.subcategory, alert.opened_ms), 0)
            up.incidents.append(incident_report(alert, case[0]))
        self.cases[alert.subcategory] = (case[0], case[1] + 1)
        up.alerts.append((alert, case[0]))

    def _close(self, up: Update, condition: str, ts_ms: int, value: float, score: float) -> None:
        alert = self.open.pop(condition).closed(ts_ms, value, score)
        self.calm.pop(condition, None)
        case_id, n = self.cases[alert.subcategory]
        if n <= 1:  # the last alert on the case cleared: readings are back to normal
            del self.cases[alert.subcategory]
            up.incidents.append(incident_resolve(case_id, ts_ms))
        else:
            self.cases[alert.subcategory] = (case_id, n - 1)
        up.alerts.append((alert, case_id))

    def _alert(self, condition: str, source: str, metric: str, value: float, score: float, threshold: float,
               severity: str, ts_ms: int) -> Alert:
        return Alert(self.sensor_id, self.kind, condition, source, metric, value, score, threshold, severity,
                     "open", ts_ms, ts_ms, subcategory_of(self.kind, condition, metric), self.lat, self.lon)

    def process(self, r: Reading, cfg: MonitorConfig) -> Update:
        """Score ``r``, update rules and model alerts, learn ``r``. Readings not newer than the last are
        ignored (a re-delivery after a restart, or out of order): the result has ``score=None``."""
        up = Update()
        if r.ts <= self.last_ms:
            return up
        if r.lat is not None:
            self.lat, self.lon = r.lat, r.lon
        if "offline" in self.open:
            self._close(up, "offline", r.ts, 0.0, 0.0)
        x = {"ts": r.ts, **r.metrics}
        score = up.score = self.detector.score_one(x)
        if self.rules is None:
            self.rules = rules_for(self.kind, cfg.rules)
        for rule in self.rules:
            spec = rule.spec
            what = rule.update(x)
            if what == "open":
                v = r.metrics[spec.metric]
                self._open(up, self._alert(spec.name, f"rule:{spec.name}", spec.metric, v, score,
                                           spec.limit_at(r.ts), spec.severity, r.ts))
            elif what == "close" and spec.name in self.open:
                self._close(up, spec.name, r.ts, r.metrics[spec.metric], score)
        self._model(up, r, score, cfg, x)
        self.detector.learn_one(x)
        self.last_ms = r.ts
        return up

    def _model(self, up: Update, r: Reading, score: float, cfg: MonitorConfig, x: dict[str, Any]) -> None:
        if "anomaly" not in self.open:
            if score >= cfg.open_score and not any(a.condition == "offline" for a, _ in up.alerts):
                metric = self.detector.explain_one(x) if hasattr(self.detector, "explain_one") else ""
                metric = metric or next(iter(r.metrics))
                self._open(up, self._alert("anomaly", "model:anomaly", metric, r.metrics.get(metric, 0.0), score,
                                           cfg.open_score, "warning", r.ts))
        elif score < cfg.close_score:
            self.calm["anomaly"] += 1
            if self.calm["anomaly"] >= cfg.close_after:
                a = self.open["anomaly"]
                self._close(up, "anomaly", r.ts, r.metrics.get(a.metric, 0.0), score)
        else:
            self.calm["anomaly"] = 0

    def offline_deadline(self, cfg: MonitorConfig) -> int | None:
        """Event time after which silence means offline (None before an interval was learned)."""
        interval = self.detector.expected_interval_s
        if self.last_ms < 0 or interval <= 0:
            return None
        return self.last_ms + int(1000 * max(cfg.offline_k * interval, cfg.offline_min_s))

    def check_offline(self, watermark_ms: int, cfg: MonitorConfig) -> Update:
        """Open the ``offline`` alert when ``watermark_ms`` passed the deadline (opened at the deadline)."""
        up = Update()
        deadline = self.offline_deadline(cfg)
        if deadline is not None and watermark_ms > deadline and "offline" not in self.open:
            self._open(up, self._alert("offline", "watermark", "", 0.0, 1.0, self.detector.expected_interval_s,
                                       "warning", deadline))
        return up
