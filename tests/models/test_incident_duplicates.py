from __future__ import annotations

import math
import pickle
import random
from typing import Any

import pytest

from models.incidents.duplicates import DuplicateLinker, haversine_m

T0 = 1795244400000
MIN = 60_000
M_PER_DEG = math.pi * 6_371_008.8 / 180  # metres per degree of latitude (and of lon at the equator)


def rep(case_id: str, ts: int, north_m: float = 0.0, east_m: float = 0.0, lat0: float = 24.48,
        sub: str = "E0102", cat: str = "E01") -> dict[str, Any]:  # fmt: skip
    lat = lat0 + north_m / M_PER_DEG
    lon = 118.09 + east_m / (M_PER_DEG * math.cos(math.radians(lat0)))
    return {
        "case_id": case_id,
        "ts": ts,
        "lat": lat,
        "lon": lon,
        "category": cat,
        "subcategory": sub,
    }


def test_haversine() -> None:
    assert haversine_m(24.48, 118.09, 24.48, 118.09) == 0
    a, b = rep("a", 0), rep("b", 0, north_m=50)
    assert haversine_m(a["lat"], a["lon"], b["lat"], b["lon"]) == pytest.approx(50, abs=1e-6)


@pytest.mark.parametrize(("north", "east", "linked"), [(49.9, 0, True), (50.1, 0, False),
                                                       (0, 49.9, True), (0, -50.1, False),
                                                       (35, 35, True), (36, 36, False)])  # fmt: skip
def test_distance_threshold(north: float, east: float, linked: bool) -> None:
    d = DuplicateLinker(distance_m=50)
    d.link(rep("A", T0))
    assert d.link(rep("B", T0 + MIN, north, east)) == ("A" if linked else None)


@pytest.mark.parametrize(
    ("dt", "linked"), [(30 * MIN, True), (30 * MIN + 1, False), (-30 * MIN, True)]
)
def test_time_window(dt: int, linked: bool) -> None:
    d = DuplicateLinker(window_ms=30 * MIN)
    d.link(rep("A", T0))
    assert d.link(rep("B", T0 + dt, 10)) == ("A" if linked else None)


def test_category_matching() -> None:
    d = DuplicateLinker()
    d.link(rep("A", T0, sub="E0102"))
    assert d.link(rep("B", T0 + MIN, sub="E0104")) is None  # same category, other subcategory
    assert d.link(rep("C", T0 + MIN, sub="C0103", cat="C01")) is None
    assert d.link(rep("D", T0 + MIN, sub="E0102")) == "A"
    by_cat = DuplicateLinker(match_on="category")
    by_cat.link(rep("A", T0, sub="E0102"))
    assert by_cat.link(rep("B", T0 + MIN, sub="E0104")) == "A"
    assert by_cat.link(rep("C", T0 + MIN, sub="C0103", cat="C01")) is None
    no_sub = DuplicateLinker()
    no_sub.link({**rep("A", T0), "subcategory": None})
    assert no_sub.link({**rep("B", T0), "subcategory": None}) == "A"  # falls back to the category


def test_cluster_links_to_earliest_root() -> None:
    d = DuplicateLinker()
    assert d.link(rep("A", T0)) is None
    assert d.link(rep("B", T0 + 10 * MIN, 40)) == "A"
    assert d.link(rep("C", T0 + 20 * MIN, 80)) == "A"  # 80 m from A, 40 m from B
    assert d.link(rep("B", T0 + 10 * MIN, 40)) == "A"  # re-delivered: same answer
    d.forget("A")
    assert d.link(rep("D", T0 + 25 * MIN, 60)) == "B"  # root gone: the earliest match itself


def test_unlocatable_reports_are_not_recorded() -> None:
    d = DuplicateLinker()
    assert d.link({"case_id": "A", "ts": T0, "category": "E01"}) is None
    assert d.link({"case_id": "B", "ts": T0, "lat": 24.48, "lon": 118.09}) is None
    assert len(d) == 0


def test_state_is_bounded_by_event_time() -> None:
    d = DuplicateLinker(window_ms=30 * MIN)
    for i in range(600):  # one report a minute for ten hours, all at one spot
        d.link(rep(f"R{i}", T0 + i * MIN, north_m=(i % 7) * 100.0))
        assert len(d) <= 31
    assert len(d._cells) <= 31


def _brute(reports: list[dict[str, Any]], dist: float, window: int) -> list[str | None]:
    held: list[tuple[dict[str, Any], str | None]] = []
    out: list[str | None] = []
    clock = -1
    for r in reports:
        clock = max(clock, r["ts"])
        held = [(h, p) for h, p in held if h["ts"] >= clock - window]
        ids = {h["case_id"] for h, _ in held}
        cands = [
            (h, p) for h, p in held
            if h["subcategory"] == r["subcategory"] and abs(h["ts"] - r["ts"]) <= window
            and haversine_m(h["lat"], h["lon"], r["lat"], r["lon"]) <= dist
        ]  # fmt: skip
        parent = None
        if cands:
            h, p = min(cands, key=lambda c: (c[0]["ts"], c[0]["case_id"]))
            parent = p if p in ids else h["case_id"]
        held.append((r, parent))
        out.append(parent)
    return out


@pytest.mark.parametrize(("lat0", "dist"), [(24.48, 50.0), (60.0, 50.0), (24.48, 7.0)])
def test_matches_brute_force(lat0: float, dist: float) -> None:
    rng = random.Random(int(lat0 * 10 + dist))
    reports = []
    ts = T0
    for i in range(600):
        ts += rng.randrange(0, 20_000)
        reports.append(rep(f"R{i:04d}", ts, rng.uniform(0, 8 * dist), rng.uniform(0, 8 * dist),
                           lat0=lat0, sub=rng.choice(["E0102", "E0104"])))  # fmt: skip
    d = DuplicateLinker(distance_m=dist, window_ms=30 * MIN)  # grid sized for Xiamen in every case
    got = [d.link(r) for r in reports]
    assert got == _brute(reports, dist, 30 * MIN)
    assert sum(g is not None for g in got) > 100


def test_bad_parameters_and_pickle() -> None:
    with pytest.raises(ValueError):
        DuplicateLinker(distance_m=0)
    with pytest.raises(ValueError):
        DuplicateLinker(match_on="grid")  # type: ignore[arg-type]
    d = DuplicateLinker()
    d.link(rep("A", T0))
    clone = pickle.loads(pickle.dumps(d))
    assert clone.link(rep("B", T0, 5)) == d.link(rep("B", T0, 5)) == "A"
