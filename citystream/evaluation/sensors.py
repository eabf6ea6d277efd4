"""Evaluate the sensor monitor on a recording with ground truth (the simulator's ``ground_truth.jsonl.gz``).

Every reading goes through :class:`~models.sensors.monitor.SensorMonitor` in event-time order, as the
agent does; the offline check runs on the recording's event-time watermark once per minute. Figures:

* per anomaly type (spike, level_shift, drift, stuck, dropout) and for threshold breaches: recall (an alert
  of the sensor opened within ``[start_ts, end_ts + grace]``) and the median detection delay;
* for threshold breaches also the share alerted on the first breaching reading;
* false alarms per sensor-day: alerts opened that overlap no truth window of their sensor.
"""

from __future__ import annotations

__all__ = ["SensorEvaluation", "evaluate_recording", "iter_readings"]

import gzip
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from models.sensors import MonitorConfig, Reading, SensorMonitor, decode_reading
from models.sensors.alerts import Alert

_GRACE_MS = 10 * 60_000


@dataclass
class SensorEvaluation:
    """Per truth type: (found, total, delays in s); false alarms; sensor-days; readings scored."""

    found: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)
    first_reading: list[bool] = field(default_factory=list)
    false_alarms: int = 0
    false_by: dict[str, int] = field(default_factory=dict)
    sensor_days: float = 0.0
    readings: int = 0
    alerts: int = 0

    def rows(self) -> list[tuple[str, int, int, float, float | None]]:
        """``(type, found, total, recall, median delay s)`` per truth type."""
        out = []
        for typ in sorted(self.found):
            hit = self.found[typ]
            med = statistics.median(self.delays[typ]) if self.delays[typ] else None
            out.append((typ, sum(hit), len(hit), sum(hit) / len(hit) if hit else 0.0, med))
        return out

    @property
    def false_alarms_per_sensor_day(self) -> float:
        return self.false_alarms / self.sensor_days if self.sensor_days else 0.0


def iter_readings(recording: Path) -> Iterator[Reading]:
    """Valid readings of ``sensor_telemetry.jsonl.gz`` in recorded order."""
    with gzip.open(recording / "sensor_telemetry.jsonl.gz", "rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            r = decode_reading(rec["v"].encode(), rec["k"])
            if isinstance(r, Reading):
                yield r


def _truth(recording: Path) -> tuple[dict[str, object], list[dict[str, object]]]:
    with gzip.open(recording / "ground_truth.jsonl.gz", "rb") as fh:
        rows = [orjson.loads(line) for line in fh]
    return rows[0], [r for r in rows[1:] if r["truth"] in ("sensor_anomaly", "threshold_breach")]


def evaluate_recording(recording: Path, cfg: MonitorConfig | None = None, warmup_h: float = 0.0) -> SensorEvaluation:
    """Run the monitor over ``recording`` and score its alerts against the ground truth.

    ``warmup_h``: the first hours are the models' learning period, as for a sensor newly connected: anomalies
    starting in them and alerts opened in them are not scored (threshold breaches are scored throughout:
    rules need no learning), and sensor-days count from its end.
    """
    cfg = cfg or MonitorConfig()
    meta, truth = _truth(recording)
    scored_from = int(meta["start_ts"]) + int(warmup_h * 3_600_000)  # type: ignore[call-overload]
    truth_windows = truth
    truth = [t for t in truth if t["truth"] == "threshold_breach" or int(t["start_ts"]) >= scored_from]  # type: ignore[call-overload]
    monitors: dict[str, SensorMonitor] = {}
    opened: list[Alert] = []
    closed: dict[str, int] = {}
    ev = SensorEvaluation()
    next_check = 0
    for r in iter_readings(recording):
        m = monitors.get(r.sensor_id)
        if m is None:
            m = monitors[r.sensor_id] = SensorMonitor(r.sensor_id, r.kind, **cfg.detector_params)
        up = m.process(r, cfg)
        ev.readings += up.score is not None
        opened += [a for a, _ in up.alerts if a.status == "open"]
        closed |= {a.alert_id: a.closed_ms for a, _ in up.alerts if a.status == "close"}
        if r.ts >= next_check:
            next_check = r.ts + 60_000
            for other in monitors.values():
                opened += [a for a, _ in other.check_offline(r.ts, cfg).alerts]
    ev.alerts = len(opened)
    by_sensor: dict[str, list[Alert]] = {}
    for a in opened:
        by_sensor.setdefault(a.sensor_id, []).append(a)
    for t in truth:
        typ = str(t["type"]) if t["truth"] == "sensor_anomaly" else "threshold_breach"
        start, end = int(t["start_ts"]), int(t["end_ts"])  # type: ignore[call-overload]
        if typ == "threshold_breach":  # a rule alert open at the first breaching reading (maybe from before)
            hits = [a for a in by_sensor.get(str(t["sensor_id"]), []) if a.source.startswith("rule")
                    and a.opened_ms <= start <= closed.get(a.alert_id, end + 1) and a.condition != "gas_warning"]
        else:
            hits = [a for a in by_sensor.get(str(t["sensor_id"]), []) if start <= a.opened_ms <= end + _GRACE_MS]
        ev.found.setdefault(typ, []).append(int(bool(hits)))
        ev.delays.setdefault(typ, [])
        if hits:
            first = max(start, min(a.opened_ms for a in hits))
            ev.delays[typ].append((first - start) / 1000)
            if typ == "threshold_breach":
                ev.first_reading.append(first == start)
        elif typ == "threshold_breach":
            ev.first_reading.append(False)
    windows: dict[str, list[tuple[int, int]]] = {}
    for t in truth_windows:
        windows.setdefault(str(t["sensor_id"]), []).append((int(t["start_ts"]), int(t["end_ts"]) + _GRACE_MS))  # type: ignore[call-overload]
    for a in opened:
        w = windows.get(a.sensor_id, [])
        if a.opened_ms >= scored_from and not any(s - 60_000 <= a.opened_ms <= e for s, e in w):
            ev.false_alarms += 1
            ev.false_by[f"{a.kind}/{a.condition}"] = ev.false_by.get(f"{a.kind}/{a.condition}", 0) + 1
    span_days = (int(meta["end_ts"]) - scored_from) / 86_400_000  # type: ignore[call-overload]
    ev.sensor_days = len(monitors) * span_days
    return ev
