"""Zone loaders: GeoJSON with a property mapping, DCIC fence CSV, and bad features reported."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from models.geo import PropertyMapping, ZoneLoadError, load_dcic_fences, load_geojson

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "geo"


def test_geojson_loads_good_features_and_reports_each_bad_one() -> None:
    res = load_geojson(FIXTURES / "zones_small.geojson")
    assert [(z.zone_id, z.kind) for z in res.zones] == [
        ("NP-SKYBRIDGE", "no_parking"),  # Chinese alias 禁停区
        ("F-001", "parking_fence"),
        ("ST-01", "street"),
        ("GRID-7", "grid"),  # id from the feature's own "id" member
    ]
    fence = res.zones[1]
    assert (fence.capacity, fence.operator, fence.name) == (12, "meituan", "F-001")
    assert res.zones[3].capacity == 3  # numeric string accepted
    reasons = {r.zone_id: r.reason for r in res.rejected}
    assert [r.index for r in res.rejected] == [4, 5, 6, 7, 8]
    assert reasons["BAD-POINT"] == "geometry type Point is not polygonal"
    assert reasons["BAD-BOWTIE"].startswith("invalid geometry: Self-intersection")
    assert reasons["BAD-KIND"] == "unknown kind 'parking_lot'"
    assert reasons["BAD-CAP"] == "capacity -2 is not a non-negative integer"
    assert reasons["F-001"] == "duplicate id (first at #1)"


def test_raise_if_rejected_names_the_problems() -> None:
    with pytest.raises(ZoneLoadError, match=r"5 zone\(s\) rejected: #4 BAD-POINT"):
        load_geojson(FIXTURES / "zones_small.geojson").raise_if_rejected()


def test_mapping_renames_properties_and_reaches_into_nested_objects() -> None:
    doc = orjson.loads((FIXTURES / "zones_small.geojson").read_bytes())
    street = {"type": "FeatureCollection", "features": [doc["features"][2]]}
    mapping = PropertyMapping(parent="parent.code")
    assert load_geojson(street, mapping).zones[0].parent == "350203"
    # A single-kind file (DataV district style): ids under another name, kind fixed by the mapping.
    datav = {"type": "Feature", "properties": {"adcode": 350203, "name": "思明区"},
             "geometry": doc["features"][2]["geometry"]}
    z = load_geojson(datav, PropertyMapping(id="adcode", constant_kind="district")).zones[0]
    assert (z.zone_id, z.kind, z.name, z.geometry.geom_type) == ("350203", "district", "思明区", "MultiPolygon")


def test_missing_id_and_geometry_are_reported() -> None:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "grid"}, "geometry": None},
        {"type": "Feature", "properties": {"zone_id": "G", "kind": "grid"}, "geometry": None},
        {"type": "Feature", "properties": {"zone_id": "H", "kind": "grid"},
         "geometry": {"type": "Polygon", "coordinates": [[[200, 0], [201, 0], [201, 1], [200, 0]]]}},
        "junk",
    ]}
    assert [r.reason for r in load_geojson(fc).rejected] == [
        "missing id (property 'zone_id')", "missing geometry",
        "coordinates outside WGS84 lon/lat range", "not a GeoJSON Feature",
    ]
    with pytest.raises(ValueError, match="not a GeoJSON"):
        load_geojson({"type": "Topology"})


def test_dcic_csv_with_bom_loads_fences_and_reports_bad_rows() -> None:
    res = load_dcic_fences(FIXTURES / "fences_small.csv", capacity=8, operator="city")
    assert [z.zone_id for z in res.zones] == ["测试路0_L_A00001", "测试路0_L_A00002", "测试路1_R_B00001"]
    assert all(z.kind == "parking_fence" and z.capacity == 8 and z.operator == "city" for z in res.zones)
    assert res.zones[2].geometry.bounds == pytest.approx((118.11, 24.48, 118.11006, 24.48002))
    assert [(r.index, r.reason) for r in res.rejected] == [
        (3, "FENCE_LOC ring is not closed"),
        (4, "FENCE_LOC is not a list of [lon,lat] pairs"),
        (5, "FENCE_LOC needs at least 4 [lon,lat] points"),
        (6, "duplicate id (first at #0)"),
    ]


def test_dcic_rejects_a_file_with_another_header(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("ID,LOC\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a DCIC fence file"):
        load_dcic_fences(p)
