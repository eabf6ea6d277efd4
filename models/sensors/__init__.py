"""Sensor telemetry: kinds and validation, threshold rules with hysteresis, alerts, the per-sensor monitor."""

from __future__ import annotations

__all__ = ["KINDS", "KIND_METRICS", "MetricSpec", "Reading", "Invalid", "decode_reading", "check_reading",
           "validate_reading", "ThresholdConfig", "RuleSpec", "ThresholdRule", "default_rules", "rules_for",
           "rule_events", "Alert", "SensorMonitor", "MonitorConfig", "Update"]

from models.sensors.alerts import Alert
from models.sensors.kinds import (
           KIND_METRICS,
           KINDS,
           Invalid,
           MetricSpec,
           Reading,
           check_reading,
           decode_reading,
           validate_reading,
)
from models.sensors.monitor import MonitorConfig, SensorMonitor, Update
from models.sensors.rules import (
           RuleSpec,
           ThresholdConfig,
           ThresholdRule,
           default_rules,
           rule_events,
           rules_for,
)
