"""The Pipeline dashboard: throughput, dead letters, lag, sink latency, bike fix counts."""

from __future__ import annotations

from typing import Any

FILE = "pipeline.json"


def build(h: Any) -> dict[str, Any]:
    """``h`` holds the panel helpers of deploy/grafana/generate.py (ch_panel, prom_panel, dashboard)."""
    return h.dashboard("citystream-pipeline", "citystream · Pipeline", [
        h.prom_panel("Messages consumed /s by topic", "sum by (topic) (rate(citystream_records_in_total[1m]))", "{{topic}}"),
        h.prom_panel("Dead letters /s by reason", "sum by (topic, reason) (rate(citystream_dead_letters_total[5m]))",
                   "{{topic}} {{reason}}"),
        h.prom_panel("Consumer lag by topic", "sum by (topic) (citystream_consumer_lag)", "{{topic}}"),
        h.prom_panel("Event-time lag", "max by (topic) (citystream_event_time_lag_seconds)", "{{topic}}", unit="s"),
        h.prom_panel("ClickHouse insert p95 latency",
                   "histogram_quantile(0.95, sum by (le, table) (rate(citystream_sink_insert_seconds_bucket[5m])))",
                   "{{table}}", unit="s"),
        h.prom_panel("GPS fixes by outcome /s", "sum by (outcome) (rate(citystream_bike_fixes_total[1m]))", "{{outcome}}"),
        h.ch_panel("GPS fixes per minute (event time)",
                 "SELECT minute AS time, sum(fixes) AS fixes, sum(locked) AS locked_fixes FROM v_bike_zone_minute "
                 "WHERE $__timeFilter(minute) GROUP BY time ORDER BY time", kind="timeseries"),
        h.ch_panel("Busiest zones", "SELECT zone, sum(fixes) AS fixes, max(bikes) AS peak_bikes FROM v_bike_zone_minute "
                 "WHERE $__timeFilter(minute) GROUP BY zone ORDER BY fixes DESC LIMIT 20"),
        h.ch_panel("Dead letters (latest)", "SELECT received_at, source_topic, reason, detail, left(payload, 120) AS payload "
                 "FROM dead_letters FINAL WHERE $__timeFilter(received_at) ORDER BY received_at DESC LIMIT 100", w=24),
        h.prom_panel("Bike supervisor: fixes by outcome /s",
                   "sum by (outcome) (rate(citystream_bike_supervisor_fixes_total[1m]))", "{{outcome}}"),
        h.prom_panel("Bike supervisor: fixes waiting for event time",
                   'sum by (partition) (citystream_bike_supervision{measure="held_fixes"})', "partition {{partition}}"),
        h.prom_panel("Bike partitions waiting for a bike.gps partition that sent nothing yet",
                   'max by (partition) (citystream_bike_supervision{measure="sources_waiting"})',
                   "partition {{partition}}"),
        h.prom_panel("Bike supervisor event time behind the wall clock",
                   'time() - max by (partition) (citystream_bike_supervision{measure="event_time_seconds"})',
                   "partition {{partition}}", unit="s"),
    ])


