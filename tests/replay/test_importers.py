from __future__ import annotations

import gzip
import json
import random
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from replay.importers import import_dcic, import_series
from replay.importers.common import sorted_records
from replay.recording import Recording

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcic_small"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LOCK, TRACK = FIXTURES / "lock_rows.csv", FIXTURES / "track_rows.csv"


def shared(rel: str) -> Path:
    path = SHARED_DATA / rel
    if not path.exists():
        pytest.skip(f"reference data {rel} not found under {SHARED_DATA} (../shared is absent)")
    return path


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def read(out: Path) -> tuple[Recording, list[dict]]:
    rec = Recording.open(out)
    rec.verify()
    return rec, [orjson.loads(m.value) | {"_k": m.key, "_t": m.ts} for m in rec.iter_merged()]


def test_dcic_fixture_both_kinds_sorted_with_bad_rows_counted(tmp_path: Path) -> None:
    calls: list[int] = []
    s = import_dcic([LOCK, TRACK], tmp_path / "r", operator="hellobike", progress=calls.append)
    assert (s.rows_read, s.records, s.skipped) == (9, 7, {"bad_time": 1, "bad_lat_lon": 1})
    assert sum(calls) == 9
    assert any("lock_rows.csv:5: bad_time" in e and "25:00" in e for e in s.examples)
    rec, rows = read(tmp_path / "r")
    assert [(r["bike_id"][-1], r["ts"]) for r in rows] == [
        ("6", "2020-12-20T23:59:59+08:00"),
        ("1", "2020-12-21T07:01:00+08:00"),
        ("1", "2020-12-21T07:01:00+08:00"),
        ("2", "2020-12-21T07:02:00+08:00"),
        ("2", "2020-12-21T07:02:30+08:00"),
        ("2", "2020-12-21T07:03:00+08:00"),
        ("3", "2020-12-21T07:05:00+08:00"),
    ]
    assert [r["lat"] for r in rows[1:3]] == [24.47, 24.4705]  # the tie keeps input order
    assert [r["locked"] for r in rows] == [False, True, True, False, False, False, True]
    assert all(r["_t"] == ms(r["ts"]) and r["_k"] == r["bike_id"] for r in rows)
    assert rows[0]["_t"] == ms("2020-12-20T15:59:59+00:00")
    assert {r["operator"] for r in rows} == {"hellobike"}
    assert set(rows[0]) - {"_k", "_t"} == {"bike_id", "operator", "ts", "lat", "lon", "locked"}
    extra = rec.extra
    assert extra["skipped_rows"] == {"bad_lat_lon": 1, "bad_time": 1} and extra["rows_read"] == 9
    assert [(f["name"], f["kind"], f["rows"]) for f in extra["files"]] == [
        ("lock_rows.csv", "lock", 6),
        ("track_rows.csv", "track", 3),
    ]
    assert rec.manifest["feeds"]["bike_gps"]["ordered"] is True
    assert (s.first_ts, s.last_ts) == (rec.first_ts, rec.last_ts) == (rows[0]["_t"], rows[-1]["_t"])


def test_dcic_external_merge_matches_in_memory_sort(tmp_path: Path) -> None:
    import_dcic([LOCK, TRACK], tmp_path / "mem")
    import_dcic([LOCK, TRACK], tmp_path / "ext", chunk_rows=2)
    for name in ("bike_gps.jsonl.gz", "manifest.json"):
        assert (tmp_path / "mem" / name).read_bytes() == (tmp_path / "ext" / name).read_bytes()


def test_dcic_gzip_input_and_bad_header(tmp_path: Path) -> None:
    gz = tmp_path / "track.csv.gz"
    gz.write_bytes(gzip.compress(TRACK.read_bytes()))
    assert import_dcic([gz], tmp_path / "r").records == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,LAT,LON\n1,2,3\n")
    with pytest.raises(ValueError, match="neither DCIC lock rows"):
        import_dcic([bad], tmp_path / "r2")
    with pytest.raises(ValueError, match="operator"):
        import_dcic([TRACK], tmp_path / "r3", operator="")


def test_dcic_every_skip_reason_is_counted(tmp_path: Path) -> None:
    src = tmp_path / "lock.csv"
    src.write_text(
        "UPDATE_TIME,BICYCLE_ID,LOCK_STATUS,LATITUDE,LONGITUDE\n"  # columns in another order
        "2020/12/21 07:00,ok,1,24.5,118.1\n"
        "2020/12/21 07:00,,1,24.5,118.1\n"
        "2020/12/21 07:00,lat,1,91,118.1\n"
        "2020/12/21 07:00,nan,1,nan,118.1\n"
        "2020/12/21 07:00,st,2,24.5,118.1\n"
        "2020/12/21 07:00,short,1,24.5\n"
        "\n"
        "2020/13/21 07:00,month,1,24.5,118.1\n"
    )
    s = import_dcic([src], tmp_path / "r")
    assert s.records == 1 and s.rows_read == 8
    assert s.skipped == {
        "bad_bike_id": 1,
        "lat_lon_out_of_range": 2,
        "bad_lock_status": 1,
        "wrong_field_count": 1,
        "blank_row": 1,
        "bad_time": 1,
    }
    assert "skipped 7" in str(s) and "lock.csv:3: bad_bike_id" in str(s)


def test_external_sort_folds_runs_and_cleans_up(tmp_path: Path) -> None:
    rng = random.Random(3)
    recs = [(rng.randrange(50), i, f"k{i}", f"v{i}") for i in range(500)]
    out = list(sorted_records(recs, chunk_rows=7, tmp_dir=tmp_path, max_runs=4))
    assert out == sorted(recs) and list(tmp_path.iterdir()) == []


def test_dcic_real_lock_events(tmp_path: Path) -> None:
    path = shared("xiamen_bikes/lock_events_2020-12-21.csv")
    started = time.perf_counter()
    s = import_dcic([path], tmp_path / "r")
    assert time.perf_counter() - started < 5.0
    assert (s.rows_read, s.records, s.skipped) == (38_468, 38_468, {})
    rec = Recording.open(tmp_path / "r")
    prev = None
    for m in rec.iter_feed("bike_gps"):
        v = orjson.loads(m.value)
        assert v["bike_id"] == m.key and v["locked"] is True and v["operator"] == "unknown"
        assert 24.3 < v["lat"] < 24.7 and 117.9 < v["lon"] < 118.4
        assert ms(v["ts"]) == m.ts and v["ts"].endswith("+08:00")
        assert ms("2020-12-20T23:00:00+00:00") <= m.ts <= ms("2020-12-21T01:00:00+00:00")
        assert prev is None or prev <= m.ts
        prev = m.ts


SKAB_LIKE = """datetime;Pressure;Volume Flow RateRMS;anomaly;changepoint
2020-03-09 10:14:35;0.30;32.0;1.0;1.0
2020-03-09 10:14:33;0.10;31.0;0.0;0.0
2020-03-09 10:14:34;0.20;;0.0;0.0
2020-03-09 10:14:36;oops;33.0;1.0;0.0
2020-03-09 10:14:37;0.40;34.0;1.0;0.0
not a time;0.5;35.0;0.0;0.0
"""


def test_series_skab_like(tmp_path: Path) -> None:
    src = tmp_path / "skab.csv"
    src.write_text(SKAB_LIKE)
    s = import_series(
        src,
        tmp_path / "r",
        sensor_id="PUMP-1",
        kind="drainage_level",
        tz="Asia/Shanghai",
        lat=24.48,
        lon=118.09,
        chunk_rows=2,
    )
    assert (s.rows_read, s.records, s.skipped) == (6, 4, {"bad_number": 1, "bad_time": 1})
    rec, rows = read(tmp_path / "r")
    assert [r["ts"] for r in rows] == [
        "2020-03-09T02:14:33Z",
        "2020-03-09T02:14:34Z",
        "2020-03-09T02:14:35Z",
        "2020-03-09T02:14:37Z",
    ]
    assert rows[0] == {
        "sensor_id": "PUMP-1",
        "kind": "drainage_level",
        "ts": "2020-03-09T02:14:33Z",
        "lat": 24.48,
        "lon": 118.09,
        "metrics": {"pressure": 0.1, "volume_flow_raterms": 31.0},
        "_k": "PUMP-1",
        "_t": ms("2020-03-09T02:14:33+00:00"),
    }
    assert rows[1]["metrics"] == {"pressure": 0.2}  # the empty cell is left out
    gt = rec.extra["ground_truth"]
    assert gt == {"anomaly": [rows[2]["_t"], rows[3]["_t"]], "changepoint": [rows[2]["_t"]]}
    assert rec.extra["metrics"] == {
        "Pressure": "pressure",
        "Volume Flow RateRMS": "volume_flow_raterms",
    }


def test_series_nab_like_with_mapping_and_external_labels(tmp_path: Path) -> None:
    src = tmp_path / "nab.csv"
    src.write_text("timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2.5\n")
    import_series(
        src,
        tmp_path / "r",
        sensor_id="DR-1",
        kind="drainage_level",
        metrics={"value": "level_m"},
        labels=["2014-04-01 00:05:00"],
    )
    rec, rows = read(tmp_path / "r")
    assert [(r["ts"], r["metrics"]) for r in rows] == [
        ("2014-04-01T00:00:00Z", {"level_m": 1.5}),
        ("2014-04-01T00:05:00Z", {"level_m": 2.5}),
    ]
    assert "lat" not in rows[0]
    assert rec.extra["ground_truth"] == {"anomaly": [rows[1]["_t"]]}
    with pytest.raises(ValueError, match=r"no column\(s\) \['level'\]"):
        import_series(src, tmp_path / "r2", sensor_id="D", kind="k", metrics={"level": "level_m"})


def test_series_real_nab_file(tmp_path: Path) -> None:
    nab = shared("anomaly/nab_artificial")
    rel = "artificialWithAnomaly/art_daily_jumpsup.csv"
    labels = json.loads((nab / "combined_labels.json").read_text())[rel]
    s = import_series(
        nab / "data" / rel,
        tmp_path / "r",
        sensor_id="NAB-1",
        kind="drainage_level",
        metrics={"value": "level_m"},
        labels=labels,
    )
    assert s.skipped == {} and s.records == s.rows_read > 1000
    rec = Recording.open(tmp_path / "r")
    assert rec.extra["ground_truth"]["anomaly"] == [ms(t + "+00:00") for t in labels]
    assert rec.manifest["feeds"]["sensor_telemetry"]["ordered"] is True


def test_series_real_skab_file(tmp_path: Path) -> None:
    path = shared("anomaly/skab/valve1/0.csv")
    s = import_series(path, tmp_path / "r", sensor_id="SKAB-1", kind="drainage_level")
    assert s.skipped == {} and s.records == s.rows_read > 1000
    rec = Recording.open(tmp_path / "r")
    first = orjson.loads(next(rec.iter_feed("sensor_telemetry")).value)
    assert len(first["metrics"]) == 8 and "anomaly" not in first["metrics"]
    assert rec.extra["ground_truth"]["anomaly"] and rec.extra["ground_truth"]["changepoint"]
