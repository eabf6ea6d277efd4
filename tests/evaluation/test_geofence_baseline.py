"""The reference job of ``bench bikes`` counts every fix of single-fix and operator-batch messages per no-parking
zone, as the pipeline's own zone index places them."""

from __future__ import annotations

import numpy as np
import orjson

from citystream.config import Settings
from citystream.geofence_baseline import geofence_counts
from streams.agents.bikes_geo import SAMPLE_GEOGRAPHY, load_bike_setup


def test_counts_single_and_batched_fixes_per_no_parking_zone() -> None:
    index = load_bike_setup(Settings(geography=SAMPLE_GEOGRAPHY)).index
    zones = [z for z in index.zones if z.kind == "no_parking"][:3]
    assert len(zones) == 3
    inside = [z.geometry.representative_point() for z in zones]
    fix = [{"bike_id": f"B{i}", "ts": 1, "lat": p.y, "lon": p.x, "locked": True} for i, p in enumerate(inside)]
    far = {"bike_id": "F", "ts": 1, "lat": 0.0, "lon": 0.0, "locked": True}
    values = [orjson.dumps(fix[0]), orjson.dumps({"operator": "x", "fixes": [fix[1], fix[2], fix[2], far]}),
              orjson.dumps(far)]
    counts = np.zeros(len(index), np.int64)
    assert geofence_counts(values, index, counts) == 6  # every fix read, in a zone or not
    want = np.zeros(len(index), np.int64)
    for z, n in zip(zones, (1, 1, 2), strict=True):
        want[index.position(z.zone_id)] += n
    assert counts.tolist() == want.tolist()
    assert geofence_counts([], index, counts) == 0 and counts.sum() == 4
