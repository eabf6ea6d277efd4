"""The pure parts of the bike wiring: batch decoding, partition split, rows, typed sinks, geography setup."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

from citystream.config import Settings
from models.bikes.events import closed, opened
from models.geo import ZoneLoadError
from models.gps import decode_gps, decode_gps_many
from streams.agents.bikes_geo import load_bike_setup
from streams.agents.bikes_rows import VIOLATION_COLUMNS, violation_row
from streams.agents.bikes_sinks import typed_rows
from streams.agents.validate_fixes import split_by_partition
from streams.topics import partition_for

FIX = {"bike_id": "MT-1", "operator": "meituan", "ts": 1795244405000, "lat": 24.48, "lon": 118.09, "locked": True}
MESSAGES = [
    orjson.dumps(FIX),
    orjson.dumps({"operator": "hellobike", "fixes": [{**FIX, "bike_id": "HB-1", "operator": None},
                                                     {"bike_id": "HB-2", "lat": 999}, {**FIX, "bike_id": "HB-3"}]}),
    b"{oops",
    orjson.dumps([FIX, {**FIX, "ts": "2026-11-21T07:00:05"}]),  # a bare array with a naive timestamp
    orjson.dumps({**FIX, "lat": "24.5"}),
    orjson.dumps(42),
    orjson.dumps({"operator": "x", "fixes": "nope"}),
    None,
]


def test_decoding_many_messages_is_decoding_each() -> None:
    many, dead = decode_gps_many(MESSAGES)
    one = [decode_gps(m) for m in MESSAGES]
    assert many.bike_id == [b for ok, _ in one for b in ok.bike_id]
    assert many.ts.tolist() == [t for ok, _ in one for t in ok.ts.tolist()]
    assert many.operator == [o for ok, _ in one for o in ok.operator]
    assert dead == [(i, d) for i, (_, bad) in enumerate(one) for d in bad]
    assert {d.reason for _, d in dead} >= {"missing_field", "invalid_json", "bad_timestamp", "wrong_type"}


def test_split_by_partition_keeps_each_bikes_order_and_uses_kafkas_partitioner() -> None:
    rng = np.random.default_rng(0)
    bikes = [f"MT-{i:04d}" for i in rng.integers(0, 50, 400)]
    batch, _ = decode_gps_many([orjson.dumps({**FIX, "bike_id": b, "ts": FIX["ts"] + i}) for i, b in enumerate(bikes)])
    parts = split_by_partition(batch, 4)
    assert sum(len(p) for p in parts.values()) == len(batch)
    for p, part in parts.items():
        assert all(partition_for(b.encode(), 4) == p for b in part.bike_id)
        assert np.all(np.diff(part.ts) > 0)  # the original order (ts grows with the position here)


def test_violation_rows_and_typed_sinks() -> None:
    o = opened("outside_fence", "MT-1", ts=1_300_000, opened_ts=1_000_000, operator="meituan", zone_id="FRA",
               lon=118.1, lat=24.5, distance_m=33.0)
    rows = [violation_row(o), violation_row(closed(o, 1_600_000, "unlocked")), {"t": "fault", "bike_id": "x"}]
    got = typed_rows(VIOLATION_COLUMNS, "violation")(SimpleNamespace(value=orjson.dumps(rows)))
    assert [(r[0], r[5], r[7], r[8], r[-1]) for r in got] == [
        ("outside_fence:MT-1:1000000", "open", 1_300_000, 0, 1), ("outside_fence:MT-1:1000000", "closed", 1_300_000, 1_600_000, 2)]


def test_setup_loads_the_sample_geography_and_refuses_a_bad_one(tmp_path: Path) -> None:
    setup = load_bike_setup(Settings())
    assert setup.config.confirm_parking and setup.config.report_parkings
    assert setup.kinds["FRA-XMD"] == "fence_required_area" and setup.capacities
    assert setup.config.registered_operators == frozenset({"meituan", "hellobike", "qingju"})
    assert setup.config.unattributed_operator == "unknown"  # the DCIC importer's default operator
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone_id": "X", "kind": "moon"},
         "geometry": {"type": "Point", "coordinates": [118, 24]}}]}))
    with pytest.raises(ZoneLoadError, match="unknown kind"):
        load_bike_setup(Settings(geography=bad))
