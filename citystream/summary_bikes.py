"""Demo summary sections of the bikes domain: violations, time to clear, fleets and parking distances."""

from __future__ import annotations

__all__ = ["SECTIONS"]

from citystream.summary import Section

SECTIONS: list[Section] = [
    Section(
        "Bikes: violations by kind (open at the end of the replay, cleared, minutes to clear)",
        "SELECT kind, count() AS violations, countIf(status = 'open') AS still_open, countIf(status = 'closed') AS closed, "
        "round(quantileExactIf(0.5)(time_to_clear_s, status = 'closed') / 60, 1) AS median_min_to_clear "
        "FROM v_bike_violations GROUP BY kind ORDER BY violations DESC",
    ),
    Section(
        "Bikes: parking violations cleared per operator (minutes from lock to unlock or move)",
        "SELECT operator, sum(cleared) AS cleared, round(max(median_s) / 60, 1) AS median_min, "
        "round(max(p90_s) / 60, 1) AS p90_min FROM v_bike_time_to_clear "
        "WHERE kind IN ('no_parking', 'outside_fence') GROUP BY operator ORDER BY operator",
    ),
    Section(
        "Bikes: fleets against their quota (distinct active bikes per local day)",
        "SELECT toString(day) AS day, operator, bikes, quota, over_by FROM v_bike_fleet_vs_quota ORDER BY day, operator",
    ),
    Section(
        "Bikes: distance from each decided parking to the nearest fence",
        "SELECT bucket, parkings, in_fence FROM v_bike_lock_distance ORDER BY bucket_order",
    ),
]
