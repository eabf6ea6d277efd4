"""Agents of the sensors domain: ``monitor_sensors`` (streams role) and its two sinks (sinks role)."""

from __future__ import annotations

__all__ = ["register", "READING_COLUMNS", "ALERT_COLUMNS"]

from streams.agents import sensors_monitor
from streams.app import Pipeline
from streams.sinking import register_json_sink

READING_COLUMNS = ("sensor_id", "kind", "ts_ms", "metric", "value", "score", "lat", "lon")
ALERT_COLUMNS = ("alert_id", "version", "sensor_id", "kind", "condition", "source", "metric", "value", "score",
                 "threshold", "severity", "status", "opened_ms", "ts_ms", "closed_ms", "subcategory", "case_id",
                 "lat", "lon")


def register(pipe: Pipeline) -> None:
    """Add this domain's agents for the pipeline's role."""
    if pipe.runs_streams:
        sensors_monitor.register(pipe)
    if pipe.runs_sinks:
        register_json_sink(pipe, "sensor.readings", "sensor_readings", READING_COLUMNS, "store_sensor_readings")
        register_json_sink(pipe, "sensor.alerts", "sensor_alerts", ALERT_COLUMNS, "store_sensor_alerts")
