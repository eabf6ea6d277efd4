"""Prometheus metrics of a worker, defined once and built from an injected registry (tests pass a fresh one)."""

from __future__ import annotations

__all__ = ["Metrics"]

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics(NamedTuple):
    """All metrics a worker exports.

    Example
    -------
    >>> m = Metrics.create(CollectorRegistry())
    >>> m.dead_letters.labels(topic="citystream.bike.gps", reason="invalid_json").inc()
    """

    records_in: Counter
    records_out: Counter
    dead_letters: Counter
    fixes: Counter
    bike_events: Counter
    bike_supervisor_fixes: Counter
    bike_supervision: Gauge
    incident_events: Counter
    sensor_readings: Counter
    sink_rows: Counter
    sink_batch_rows: Histogram
    sink_seconds: Histogram
    sink_retries: Counter
    sink_failures: Counter
    consumer_lag: Gauge
    event_time_lag: Gauge
    assigned_partitions: Gauge
    idle_seconds: Gauge
    registry: CollectorRegistry

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register every metric in ``registry``."""
        ns = "citystream"
        return cls(
            records_in=Counter("records_in", "Messages consumed", ["topic"], namespace=ns, registry=registry),
            records_out=Counter("records_out", "Messages produced", ["topic"], namespace=ns, registry=registry),
            dead_letters=Counter(
                "dead_letters", "Records sent to the dead-letter topic", ["topic", "reason"], namespace=ns,
                registry=registry,
            ),
            fixes=Counter(
                "bike_fixes", "GPS fixes by outcome (accepted, duplicate, late)", ["outcome"], namespace=ns,
                registry=registry,
            ),
            bike_events=Counter(
                "bike_events", "Bike supervision outputs and anomalies by kind and action (violation open/close, "
                "GPS fault, late stage item, ...)", ["kind", "action"], namespace=ns, registry=registry,
            ),
            bike_supervisor_fixes=Counter(
                "bike_supervisor_fixes", "Fixes the bike supervisor took, by outcome (applied, duplicate, late, "
                "behind_watermark, dropped, impossible_jump, reanchored, outside_service_area)", ["outcome"],
                namespace=ns, registry=registry,
            ),
            bike_supervision=Gauge(
                "bike_supervision", "Per bike partition: event_time_seconds (its watermark), held_fixes (waiting "
                "for it), sources_waiting (bike.gps partitions it waits for that handed nothing over yet)",
                ["partition", "measure"], namespace=ns, registry=registry,
            ),
            incident_events=Counter(
                "incident_events", "Incident events and results by outcome (applied, duplicate, illegal, late, breach, "
                "linked, ...)", ["outcome"], namespace=ns, registry=registry,
            ),
            sensor_readings=Counter(
                "sensor_readings", "Sensor readings by outcome (scored, stale, alert_open, alert_close, incident)",
                ["outcome"], namespace=ns, registry=registry,
            ),
            sink_rows=Counter("sink_rows", "Rows inserted into ClickHouse", ["table"], namespace=ns, registry=registry),
            sink_batch_rows=Histogram(
                "sink_batch_rows", "Rows per ClickHouse insert", ["table"], namespace=ns, registry=registry,
                buckets=(1, 10, 100, 1_000, 5_000, 20_000, 100_000),
            ),
            sink_seconds=Histogram(
                "sink_insert_seconds", "Latency of one ClickHouse insert (with retries)", ["table"], namespace=ns,
                registry=registry,
            ),
            sink_retries=Counter("sink_retries", "Insert retries", ["table"], namespace=ns, registry=registry),
            sink_failures=Counter(
                "sink_failures", "Inserts that failed for good (rows dead-lettered)", ["table"], namespace=ns,
                registry=registry,
            ),
            consumer_lag=Gauge(
                "consumer_lag", "High watermark minus committed offset", ["topic", "partition"], namespace=ns,
                registry=registry,
            ),
            event_time_lag=Gauge(
                "event_time_lag_seconds", "Wall clock minus the newest event time processed", ["topic"],
                namespace=ns, registry=registry,
            ),
            idle_seconds=Gauge(
                "idle_seconds", "Seconds since the worker last finished a message (all its streams acked it)",
                namespace=ns, registry=registry,
            ),
            assigned_partitions=Gauge(
                "assigned_partitions", "Partitions assigned to this worker (0 until it joined its group)",
                namespace=ns, registry=registry,
            ),
            registry=registry,
        )
