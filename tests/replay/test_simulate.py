"""``replay.simulate``: determinism, message schemas (docs/schemas.md) and ground-truth consistency."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely

from models.gps import decode_gps
from models.incidents.channels import CHANNELS
from models.incidents.deadlines import STEP_AFTER, DeadlinePolicy
from models.incidents.lifecycle import TRANSITIONS, apply
from models.incidents.taxonomy import default_categories
from models.timefmt import parse_ts_ms
from replay.recording import Recording
from replay.simulate import simulate
from replay.simulate.fences import read_fence_csv
from replay.simulate.geography import FRA_RING
from replay.simulate.projection import LocalProjection
from replay.simulate.truth import read_truth

FENCE_CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "xiamen_bikes" / "fences_gxdc_tcd.csv"
ARGS: dict[str, Any] = {"hours": 1.0, "bikes": 200, "sensors": 20, "seed": 7}
#: docs/schemas.md, "Kinds and their metrics" — written out here so the test checks the docs, not the code.
SCHEMA_METRICS = {
    "billboard_tilt": {"tilt_deg"}, "manhole_cover": {"cover_open", "water_level_cm", "gas_ppm"},
    "drainage_level": {"level_m"}, "gas": {"lel_pct"}, "site_noise": {"laeq_db"}, "site_dust": {"pm10_ugm3"},
    "air_quality": {"pm25_ugm3", "pm10_ugm3", "no2_ugm3"},
    "bridge_health": {"strain_ue", "deflection_mm", "vibration_mm_s"},
}  # fmt: skip
PROJ = LocalProjection()


def _feed(path: Path, feed: str) -> list[tuple[str | None, int, dict[str, Any]]]:
    return [(m.key, m.ts, orjson.loads(m.value)) for m in Recording.open(path).iter_feed(feed)]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sim") / "rec"
    summary = simulate(out, **ARGS)
    head, truth = read_truth(out / "ground_truth.jsonl.gz")
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in truth:
        by_type[e["truth"]].append(e)
    geo = orjson.loads((out / "geography.geojson").read_bytes())["features"]
    zones = {f["properties"]["zone_id"]: f for f in geo}
    fixes = _feed(out, "bike_gps")
    per_bike: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, _, v in fixes:
        per_bike[v["bike_id"]].append(v)
    return {"out": out, "summary": summary, "head": head, "truth": by_type, "geo": geo, "zones": zones,
            "fixes": fixes, "per_bike": per_bike, "sensors": _feed(out, "sensor_telemetry"),
            "incidents": _feed(out, "incident_events")}


def _xy(lon: float, lat: float) -> shapely.Point:
    x, y = PROJ.to_xy(np.array(lon), np.array(lat))
    return shapely.Point(float(x), float(y))


def _poly_xy(feature: dict[str, Any]) -> shapely.Polygon:
    return shapely.Polygon(PROJ.coords_to_xy(np.array(feature["geometry"]["coordinates"][0])))


def test_same_arguments_give_identical_bytes(sim: dict[str, Any], tmp_path: Path) -> None:
    simulate(tmp_path / "again", **ARGS)
    files = sorted(p.name for p in sim["out"].iterdir())
    assert {"manifest.json", "ground_truth.jsonl.gz", "geography.geojson", "bike_gps.jsonl.gz"} <= set(files)
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == files
    for name in files:
        assert (tmp_path / "again" / name).read_bytes() == (sim["out"] / name).read_bytes(), name
    simulate(tmp_path / "other", **{**ARGS, "seed": 8, "hours": 0.1})
    assert (tmp_path / "other" / "bike_gps.jsonl.gz").read_bytes() != (sim["out"] / "bike_gps.jsonl.gz").read_bytes()


def test_recording_is_ordered_and_counts_match(sim: dict[str, Any]) -> None:
    rec = Recording.open(sim["out"])
    rec.verify()
    assert all(info["ordered"] for info in rec.manifest["feeds"].values())
    s = sim["summary"]
    assert s.messages == {f: info["records"] for f, info in rec.manifest["feeds"].items()}
    assert s.fixes == len(sim["fixes"]) and s.truth == sim["head"]["counts"]
    assert sim["head"]["start_ts"] == s.start_ts and s.end_ts - s.start_ts == 3_600_000
    for feed in ("fixes", "sensors", "incidents"):
        for _, t, v in sim[feed]:
            assert t == parse_ts_ms(v["ts"]) and s.start_ts <= t < s.end_ts


def test_bike_messages_follow_the_schema(sim: dict[str, Any]) -> None:
    prefix = {"meituan": "MT-", "hellobike": "HB-", "qingju": "QJ-", "heima": "HM-"}
    for key, _, v in sim["fixes"]:
        ok, dead = decode_gps(orjson.dumps(v))
        assert not dead and len(ok) == 1
        assert key == v["bike_id"] and v["bike_id"].startswith(prefix[v["operator"]])
    assert len({v["operator"] for _, _, v in sim["fixes"]}) == 4
    assert 0.3 < np.mean([v["locked"] for _, _, v in sim["fixes"]]) < 0.95


def test_sensor_messages_follow_the_schema(sim: dict[str, Any]) -> None:
    kinds = set()
    for key, _, v in sim["sensors"]:
        assert key == v["sensor_id"] and set(v) == {"sensor_id", "kind", "ts", "lat", "lon", "metrics"}
        assert set(v["metrics"]) == SCHEMA_METRICS[v["kind"]]
        assert all(isinstance(x, int | float) and not isinstance(x, bool) for x in v["metrics"].values())
        assert v["metrics"].get("cover_open", 0) in (0, 1)
        assert 24.4 < v["lat"] < 24.6 and 118.0 < v["lon"] < 118.3
        kinds.add(v["kind"])
    assert kinds == set(SCHEMA_METRICS)


def test_incident_messages_follow_the_schema_and_lifecycle(sim: dict[str, Any]) -> None:
    table = default_categories()
    states: dict[str | None, Any] = {}
    for key, _, v in sim["incidents"]:
        assert key == v["case_id"] and re.fullmatch(r"XM\d{8}-\d{6}", v["case_id"])
        assert v["transition"] in TRANSITIONS and v["ts"].endswith("+08:00")
        if v["transition"] == "report":
            assert v["channel"] in CHANNELS and table.validate(v["category"], v["subcategory"]) is None
            assert 24.4 < v["lat"] < 24.6 and 118.0 < v["lon"] < 118.3
            phone = v.get("reporter_phone")
            assert (phone is not None) == CHANNELS[v["channel"]].citizen
            assert phone is None or re.fullmatch(r"1[3-9]\d{9}", phone)
        states[key], outcome = apply(states.get(key), v)
        assert outcome.ok, outcome.reason
    transitions = {v["transition"] for _, _, v in sim["incidents"]}
    assert {"report", "register", "dispatch", "handle", "feedback", "reject"} <= transitions


def test_every_violation_kind_is_injected(sim: dict[str, Any]) -> None:
    counts = sim["head"]["counts"]
    for sub in ("no_parking", "outside_fence", "zombie", "black_bike"):
        assert counts.get(f"bike_violation.{sub}", 0) >= 1, sub
    for typ in ("spike", "level_shift", "drift", "stuck", "dropout"):
        assert counts.get(f"sensor_anomaly.{typ}", 0) >= 1, typ
    for t in ("gps_fault", "threshold_breach", "deadline_breach", "duplicate_group"):
        assert counts.get(t, 0) >= 1, t


def test_no_parking_truth_matches_lock_fixes(sim: dict[str, Any]) -> None:
    for e in sim["truth"]["bike_violation"]:
        if e["kind"] != "no_parking":
            continue
        zone = sim["zones"][e["zone_id"]]
        assert zone["properties"]["kind"] == "no_parking"
        assert shapely.contains_xy(shapely.Polygon(zone["geometry"]["coordinates"][0]), e["lon"], e["lat"])
        lock = [f for f in sim["per_bike"][e["bike_id"]] if f["ts"] == e["opened_ts"]]
        assert len(lock) == 1 and lock[0]["locked"]
        assert _poly_xy(zone).distance(_xy(lock[0]["lon"], lock[0]["lat"])) < 80.0  # GPS noise + multipath


def test_outside_fence_truth_is_clear_of_fences(sim: dict[str, Any]) -> None:
    fences = [_poly_xy(f) for f in sim["geo"] if f["properties"]["kind"] in ("parking_fence", "no_parking")]
    fra = shapely.Polygon(FRA_RING)
    for e in sim["truth"]["bike_violation"]:
        if e["kind"] == "outside_fence":
            assert fra.contains(shapely.Point(e["lon"], e["lat"]))
            assert min(f.distance(_xy(e["lon"], e["lat"])) for f in fences) >= 14.9


def test_violation_lifetimes_match_lock_state(sim: dict[str, Any]) -> None:
    for e in sim["truth"]["bike_violation"]:
        track = sim["per_bike"][e["bike_id"]]
        if e["kind"] == "black_bike":
            assert e["operator"] == "heima" and e["opened_ts"] == track[0]["ts"]
            continue
        end = e["closed_ts"] if e["closed_ts"] is not None else 1 << 62
        assert all(f["locked"] for f in track if e["opened_ts"] <= f["ts"] < end)
        if e["closed_ts"] is not None:
            assert e["closed_by"] in ("operator", "user")
            assert [f["locked"] for f in track if f["ts"] == e["closed_ts"]] == [False]
        if e["kind"] == "zombie":
            assert e["closed_ts"] is None
    heima = {b for b in sim["per_bike"] if b.startswith("HM-")}
    assert heima == {e["bike_id"] for e in sim["truth"]["bike_violation"] if e["kind"] == "black_bike"}


def test_gps_faults_are_in_the_feed_and_impossible(sim: dict[str, Any]) -> None:
    lo, la, hi, ha = 118.067, 24.427, 118.193, 24.558
    for e in sim["truth"]["gps_fault"]:
        track = sim["per_bike"][e["bike_id"]]
        bad = [f for f in track if f["ts"] == e["ts"] and f["lat"] == e["lat"] and f["lon"] == e["lon"]]
        assert len(bad) == 1
        k = track.index(bad[0])
        assert track[k + 1]["locked"] == bad[0]["locked"] and track[k + 1]["ts"] - e["ts"] <= 10_000
        if e["fault"] == "jump":  # kilometres within seconds of a good fix: > 700 km/h
            assert _xy(track[k + 1]["lon"], track[k + 1]["lat"]).distance(_xy(e["lon"], e["lat"])) > 2_000
        else:
            assert not (lo <= e["lon"] <= hi and la <= e["lat"] <= ha)


def _readings(sim: dict[str, Any], sensor_id: str) -> list[tuple[int, dict[str, Any]]]:
    return [(t, v["metrics"]) for k, t, v in sim["sensors"] if k == sensor_id]


def test_sensor_anomalies_are_visible_in_readings(sim: dict[str, Any]) -> None:
    for e in sim["truth"]["sensor_anomaly"]:
        rows = _readings(sim, e["sensor_id"])
        inside = [m for t, m in rows if e["start_ts"] <= t <= e["end_ts"]]
        assert any(t < e["start_ts"] for t, _ in rows) and any(t > e["end_ts"] for t, _ in rows)
        if e["type"] == "dropout":
            assert inside == []
        elif e["type"] == "stuck":
            assert len(inside) >= 2 and len({m[e["metric"]] for m in inside}) == 1
        elif e["type"] == "spike":
            assert len(inside) == 1
            k = next(i for i, (t, _) in enumerate(rows) if e["start_ts"] <= t <= e["end_ts"])
            around = [m[e["metric"]] for _, m in rows[max(0, k - 5):k] + rows[k + 1:k + 6]]
            assert abs(inside[0][e["metric"]] - np.median(around)) > 0.4 * abs(e["magnitude"])


def _limit(kind: str, ts: int) -> float | None:
    local_h = ((ts // 1000 + 8 * 3600) % 86400) / 3600
    noise = 70.0 if 6 <= local_h < 22 else 55.0  # GB 12523-2011 day / night
    return {"billboard_tilt": 5.0, "manhole_cover": 0.5, "drainage_level": 1.2, "gas": 20.0,
            "site_noise": noise}.get(kind)


def test_threshold_breaches_match_readings_exactly(sim: dict[str, Any]) -> None:
    metric = {"billboard_tilt": "tilt_deg", "manhole_cover": "cover_open", "drainage_level": "level_m",
              "gas": "lel_pct", "site_noise": "laeq_db"}
    episodes = defaultdict(list)
    for e in sim["truth"]["threshold_breach"]:
        assert e["metric"] == metric[e["kind"]]
        episodes[e["sensor_id"]].append((e["start_ts"], e["end_ts"]))
    for key, t, v in sim["sensors"]:
        limit = _limit(v["kind"], t)
        if limit is None:
            continue
        breach = v["metrics"][metric[v["kind"]]] > limit
        assert breach == any(a <= t <= b for a, b in episodes[key]), (key, t)
    for key, eps in episodes.items():  # episodes start and end on breaching readings
        times = {t for t, _ in _readings(sim, key)}
        assert all(a in times and b in times for a, b in eps)


def test_deadline_breaches_are_exactly_the_late_steps(sim: dict[str, Any]) -> None:
    policy, end = DeadlinePolicy(), sim["summary"].end_ts
    cases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for k, t, v in sim["incidents"]:
        cases[k].append({**v, "t": t})
    expected = set()
    report = {k: ev[0] for k, ev in cases.items()}
    for k, ev in cases.items():
        for i, v in enumerate(ev):
            step = STEP_AFTER.get(TRANSITIONS[v["transition"]][1])
            if step is None:
                continue
            deadline = v["t"] + policy.limit_ms(step, report[k]["category"], report[k]["subcategory"])
            nxt = ev[i + 1]["t"] if i + 1 < len(ev) else None
            if deadline < end and (nxt is None or nxt > deadline):
                expected.add((k, step, deadline, nxt))
    got = {(e["case_id"], e["step"], e["deadline_ts"], e["done_ts"]) for e in sim["truth"]["deadline_breach"]}
    assert got == expected and got


def test_duplicate_groups_are_near_in_space_and_time(sim: dict[str, Any]) -> None:
    reports = {k: (t, v) for k, t, v in sim["incidents"] if v["transition"] == "report"}
    for g in sim["truth"]["duplicate_group"]:
        t0, first = reports[g["case_ids"][0]]
        assert g["first_ts"] == t0 and len(g["case_ids"]) >= 2
        for cid in g["case_ids"][1:]:
            t, v = reports[cid]
            assert (v["category"], v["subcategory"]) == (first["category"], first["subcategory"])
            assert 0 < t - t0 <= 30 * 60_000
            assert _xy(v["lon"], v["lat"]).distance(_xy(first["lon"], first["lat"])) <= 50.0


def test_geography_zones(sim: dict[str, Any]) -> None:
    props = [f["properties"] for f in sim["geo"]]
    by_kind = defaultdict(list)
    for p in props:
        by_kind[p["kind"]].append(p)
    assert len(by_kind["district"]) == 2 and len(by_kind["street"]) == 10 and len(by_kind["grid"]) == 100
    assert len(by_kind["fence_required_area"]) == 1 and 20 <= len(by_kind["no_parking"]) <= 60
    assert len({p["zone_id"] for p in props}) == len(props)
    ids = {p["zone_id"]: p for p in props}
    assert all(ids[p["parent"]]["kind"] == "district" for p in by_kind["street"])
    assert all(ids[p["parent"]]["kind"] == "street" for p in by_kind["grid"])
    assert re.fullmatch(r"(SM|HL)-\d\d-\d\d", by_kind["grid"][0]["zone_id"])
    assert all(isinstance(p["capacity"], int) and 5 <= p["capacity"] <= 30 for p in by_kind["parking_fence"])
    fences = [_poly_xy(f) for f in sim["geo"] if f["properties"]["kind"] == "parking_fence"]
    zones = shapely.STRtree([_poly_xy(f) for f in sim["geo"] if f["properties"]["kind"] == "no_parking"])
    assert len(zones.query(fences, predicate="dwithin", distance=19.9)[0]) == 0


def test_operator_batches_carry_the_same_fixes(tmp_path: Path) -> None:
    args: dict[str, Any] = {"hours": 0.25, "bikes": 80, "sensors": 0, "seed": 3, "incidents_per_hour": 0.0}
    simulate(tmp_path / "one", **args)
    simulate(tmp_path / "batch", **args, batch_operator_fixes=True)
    single = [v for _, _, v in _feed(tmp_path / "one", "bike_gps")]
    flat = []
    for key, t, v in _feed(tmp_path / "batch", "bike_gps"):
        assert key == v["operator"] and t == max(f["ts"] for f in v["fixes"])
        assert len({f["ts"] // 1000 for f in v["fixes"]}) == 1
        ok, dead = decode_gps(orjson.dumps(v))
        assert not dead and set(ok.operator) == {key}
        flat += [{"bike_id": f["bike_id"], "operator": key, **f} for f in v["fixes"]]
    def order(f: dict[str, Any]) -> tuple[int, str, float]:
        return f["ts"], f["bike_id"], f["lat"]

    assert sorted(flat, key=order) == sorted(single, key=order) and len(single) > 80


@pytest.mark.skipif(not FENCE_CSV.is_file(), reason=f"reference data absent: {FENCE_CSV} (needs ../shared)")
def test_real_dcic_fences_are_used(tmp_path: Path) -> None:
    ids, rings = read_fence_csv(FENCE_CSV)
    assert len(ids) == 14_071 and rings.shape == (14_071, 5, 2)
    centres = rings[:, :4].mean(axis=1)
    assert shapely.contains_xy(shapely.Polygon(FRA_RING), centres[:, 0], centres[:, 1]).mean() > 0.99
    simulate(tmp_path / "real", hours=0.05, bikes=400, sensors=0, seed=1, fences=FENCE_CSV)
    geo = orjson.loads((tmp_path / "real" / "geography.geojson").read_bytes())["features"]
    used = [f for f in geo if f["properties"]["kind"] == "parking_fence"]
    assert 50 < len(used) <= 200 and {f["properties"]["zone_id"] for f in used} <= set(ids)
    ring = dict(zip(ids, rings.tolist(), strict=True))
    assert all(f["geometry"]["coordinates"][0] == ring[f["properties"]["zone_id"]] for f in used)


def test_progress_start_and_argument_checks(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    seen: list[int] = []
    start = datetime(2026, 11, 21, 15, 0, tzinfo=timezone(timedelta(hours=8)))  # 07:00 UTC
    s = simulate(tmp_path / "p", hours=0.05, bikes=20, sensors=0, seed=1, start=start, progress=seen.append)
    assert seen == [60, 120, 180] and s.start_ts == parse_ts_ms("2026-11-21T07:00:00Z")
    with pytest.raises(FileExistsError):
        simulate(tmp_path / "p", hours=0.05, bikes=20, sensors=0, seed=1)
    simulate(tmp_path / "p", hours=0.05, bikes=20, sensors=0, seed=1, overwrite=True)
    with pytest.raises(ValueError, match="timezone-aware"):
        simulate(tmp_path / "q", hours=1, bikes=1, sensors=0, seed=1, start=datetime(2026, 11, 2))  # noqa: DTZ001
