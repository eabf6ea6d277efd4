from __future__ import annotations

import csv
from pathlib import Path

import pytest

from models.incidents.channels import CHANNELS, channel, is_channel
from models.incidents.taxonomy import Category, CategoryTable, default_categories, load_categories

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "taxonomy"
SOURCE = SHARED / "city_mgmt_components_events_taxonomy.csv"


@pytest.fixture(scope="module")
def table() -> CategoryTable:
    return load_categories()


def test_packaged_table_shape(table: CategoryTable) -> None:
    cats = table.categories()
    assert {c.kind for c in cats} == {"event", "component"}
    assert len(table.categories("event")) == 6 and len(table.categories("component")) == 5
    for row in table:
        assert row.handle_hours > 0
        assert row.code[0] == ("E" if row.kind == "event" else "C")
        if row.level == 2:
            assert row.parent_code is not None and row.code.startswith(row.parent_code)
            assert len(row.code) == 5
        assert row.name_en and row.name_zh
    assert default_categories() is default_categories()


def test_added_codes_for_detectors(table: CategoryTable) -> None:
    assert table["E0514"].name_zh == "共享单车乱停放"
    assert table.parent("E0514").code == "E05"  # type: ignore[union-attr]
    sensors = [c.code for c in table.subcategories("E21")]
    assert {"E2101", "E2102", "E2105", "E2106"} <= set(sensors)
    assert table["E2101"].handle_hours <= 1
    assert table.handle_hours("C01", "C0101") == 2.0  # a missing manhole cover is urgent
    assert table.handle_hours("E01", "E0101") > 24  # illegal construction is not


def test_validate_reasons(table: CategoryTable) -> None:
    assert table.validate("E01", "E0103") is None
    assert table.validate("E01") is None
    assert table.validate(None, "E0103") == "missing category"
    assert table.validate("E99", "E9901") == "unknown category code E99"
    assert table.validate("E0103", None) == "E0103 is a subcategory, not a category"
    assert table.validate("E01", "E0198") == "unknown subcategory code E0198"
    assert table.validate("E01", "E02") == "E02 is a category, not a subcategory"
    assert table.validate("C01", "E0103") == (
        "subcategory E0103 is not under category C01 (its category is E01)"
    )


def test_handle_hours_fallbacks(table: CategoryTable) -> None:
    assert table.handle_hours("E04", None) == table["E04"].handle_hours
    assert table.handle_hours("E04", "nope") == table["E04"].handle_hours
    assert table.handle_hours(None, None) == 24.0


def test_table_rejects_orphans_and_duplicates() -> None:
    cat = Category("event", "E01", 1, None, "a", "a", 1.0)
    orphan = Category("event", "E0901", 2, "E09", "b", "b", 1.0)
    with pytest.raises(ValueError, match="no valid parent"):
        CategoryTable([cat, orphan])
    with pytest.raises(ValueError, match="duplicate"):
        CategoryTable([cat, cat])
    wrong_kind = Category("component", "E0101", 2, "E01", "c", "c", 1.0)
    with pytest.raises(ValueError, match="no valid parent"):
        CategoryTable([cat, wrong_kind])


def test_load_from_path(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        "kind,code,level,parent_code,name_zh,name_en,handle_hours\n"
        "event,E01,1,,甲,A,8\nevent,E0101,2,E01,乙,B,0.5\n",
        encoding="utf-8",
    )
    t = load_categories(p)
    assert len(t) == 2 and t.handle_hours("E01", "E0101") == 0.5
    p.write_text("kind,code,level\nevent,E01,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        load_categories(p)


@pytest.mark.skipif(
    not SOURCE.exists(), reason="../shared/data/taxonomy is absent (reference data)"
)
def test_every_source_code_is_kept_or_documented(table: CategoryTable) -> None:
    dropped = {("component", "0131"), ("component", "0135")}
    with SOURCE.open(encoding="utf-8-sig") as f:
        for rec in csv.DictReader(f):
            kind = "event" if rec["kind"].startswith("事件") else "component"
            if (kind, rec["code"]) in dropped:
                continue
            code = ("E" if kind == "event" else "C") + rec["code"]
            assert code in table, code
            assert table[code].kind == kind
            own = table[code].name_en
            assert own != rec["name_en"] or len(own.split()) <= 2, code


def test_channels() -> None:
    codes = ["hotline_12345", "app_photo", "wechat", "collector_patrol", "video_ai", "sensor",
             "bike_monitor", "government_web", "media", "leader_visit", "district_hotline",
             "street_patrol", "email", "letter", "other"]  # fmt: skip
    assert list(CHANNELS) == codes
    assert channel("hotline_12345").citizen and not channel("sensor").citizen
    assert not channel("bike_monitor").citizen and not channel("video_ai").citizen
    assert is_channel("email") and not is_channel("fax")
    with pytest.raises(KeyError, match="fax"):
        channel("fax")
