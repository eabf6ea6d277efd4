"""The Bikes dashboard: open violations (table and map), violations per hour, time to clear, fleets vs
quotas, fences over capacity, and the distance from parked bikes to the nearest fence."""

from __future__ import annotations

from typing import Any

FILE = "bikes.json"
_BIKE_KINDS = "('no_parking', 'outside_fence', 'zombie')"


def build(h: Any) -> dict[str, Any]:
    """``h`` holds the panel helpers of deploy/grafana/generate.py (ch_panel, prom_panel, dashboard)."""
    return h.dashboard("citystream-bikes", "citystream · Bikes", [
        h.ch_panel(
            "Open violations", "SELECT reported_at, kind, subject_id, operator, zone_id, opened_at, "
            "round(distance_m, 1) AS fence_distance_m, measured, allowed FROM v_bike_open_violations "
            "WHERE $__timeFilter(opened_at) ORDER BY reported_at DESC LIMIT 500", w=14, h=10),
        h.ch_panel(
            "Open violations (map)", "SELECT lat, lon, kind, subject_id, operator, zone_id FROM v_bike_open_violations "
            "WHERE lat IS NOT NULL AND $__timeFilter(opened_at) LIMIT 5000", kind="geomap", w=10, h=10),
        h.ch_panel(
            "Violations per hour by kind (opened)", "SELECT hour AS time, kind, opened FROM v_bike_violations_hourly "
            "WHERE $__timeFilter(hour) ORDER BY time, kind", kind="timeseries"),
        h.ch_panel(
            "Time to clear per operator (minutes)", "SELECT operator, count() AS cleared, "
            "round(quantileExact(0.5)(time_to_clear_s) / 60, 1) AS median_min, "
            "round(quantileExact(0.9)(time_to_clear_s) / 60, 1) AS p90_min FROM v_bike_violations "
            f"WHERE status = 'closed' AND kind IN {_BIKE_KINDS} AND $__timeFilter(closed_at) "
            "GROUP BY operator ORDER BY operator", kind="barchart"),
        h.ch_panel(
            "Fleet vs quota (distinct active bikes per day)", "SELECT operator, max(bikes) AS active_bikes, "
            "max(quota) AS quota FROM v_bike_fleet_vs_quota WHERE day >= toDate($__fromTime) AND day <= toDate($__toTime) "
            "GROUP BY operator ORDER BY operator", kind="barchart"),
        h.ch_panel(
            "Fences over capacity", "SELECT fence_id, status, opened_at, closed_at, bikes_at_open, capacity, "
            "round(time_to_clear_s / 60, 1) AS minutes_over FROM v_bike_fences_over_capacity "
            "WHERE $__timeFilter(opened_at) ORDER BY opened_at DESC LIMIT 100"),
        h.ch_panel(
            "Fullest fences (peak parked / capacity)", "SELECT zone_id, max(peak) AS peak_bikes, max(capacity) AS cap, "
            "round(peak_bikes / cap, 2) AS fill FROM v_bike_zone_occupancy WHERE zone_kind = 'parking_fence' "
            "AND $__timeFilter(minute) GROUP BY zone_id ORDER BY fill DESC LIMIT 20"),
        h.ch_panel(
            "Parked bikes: distance to the nearest fence", "SELECT bucket, count() AS parkings, "
            "countIf(place = 'parking_fence') AS counted_in_fence FROM (SELECT place, multiIf(distance_m IS NULL, "
            "'>50 m', distance_m = 0, '0 (inside)', distance_m <= 3, '0-3 m', distance_m <= 10, '3-10 m', "
            "distance_m <= 20, '10-20 m', distance_m <= 50, '20-50 m', '>50 m') AS bucket FROM bike_parkings FINAL "
            "WHERE $__timeFilter(parked_at)) GROUP BY bucket ORDER BY min(multiIf(bucket = '0 (inside)', 0, "
            "bucket = '0-3 m', 1, bucket = '3-10 m', 2, bucket = '10-20 m', 3, bucket = '20-50 m', 4, 5))",
            kind="barchart"),
        h.ch_panel(
            "GPS faults (latest)", "SELECT ts, bike_id, operator, kind, speed_kmh, distance_m, lat, lon "
            "FROM bike_gps_faults FINAL WHERE $__timeFilter(ts) ORDER BY ts DESC LIMIT 100"),
        h.prom_panel("Violations /s by kind and action",
                     "sum by (kind, action) (rate(citystream_bike_events_total[5m]))", "{{kind}} {{action}}"),
    ])
