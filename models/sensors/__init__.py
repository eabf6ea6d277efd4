"""Sensor telemetry: kinds and validation, threshold rules with hysteresis, alerts, the per-sensor monitor."""

from __future__ import annotations

__all__ = ["KIND_METRICS", "Reading", "Invalid", "decode_reading", "ThresholdRule", "default_rules", "Alert",
           "SensorMonitor", "MonitorConfig", "Update"]

from models.sensors.alerts import Alert
from models.sensors.kinds import KIND_METRICS, Invalid, Reading, decode_reading
from models.sensors.monitor import MonitorConfig, SensorMonitor, Update
from models.sensors.rules import ThresholdRule, default_rules
