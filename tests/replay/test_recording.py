from __future__ import annotations

import gzip
import hashlib
import random
from pathlib import Path

import orjson
import pytest

from replay.recording import (
    FEED_TOPICS,
    FORMAT,
    RecordedMessage,
    Recording,
    RecordingError,
    RecordingWriter,
)

MESSAGES = [
    RecordedMessage("bike_gps", "B1", 1_000, b'{"bike_id":"B1","ts":1000}'),
    RecordedMessage(
        "incident_events", "XM-1", 1_500, '{"text":"井盖缺失 \\"quoted\\"\\n"}'.encode()
    ),
    RecordedMessage("bike_gps", None, 2_000, b"\xff\xfe not utf-8 \x00\x80"),
    RecordedMessage("bike_gps", "B1", 2_000, b'{"bike_id":"B1","ts":2000}'),
    RecordedMessage("sensor_telemetry", "S1", 500, b""),
    RecordedMessage("bike_gps", "B2", 1_500, "späte Ankunft".encode()),  # out of order on purpose
]


def write(path: Path, messages: list[RecordedMessage] = MESSAGES, **meta: object) -> Recording:
    with RecordingWriter(path, "unit test") as w:
        for m in messages:
            w.add(m.feed, m.key, m.ts, m.value)
        w.meta.update(meta)
    return Recording.open(path)


def test_round_trip_is_exact_per_feed(tmp_path: Path) -> None:
    rec = write(tmp_path / "r")
    for feed in FEED_TOPICS:
        assert list(rec.iter_feed(feed)) == [m for m in MESSAGES if m.feed == feed]


def test_str_values_are_stored_as_utf8(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "r", "t") as w:
        w.add("bike_gps", "B1", 1, "厦门 ✓")
    assert next(Recording.open(tmp_path / "r").iter_feed("bike_gps")).value == "厦门 ✓".encode()


def test_line_format_text_and_base64(tmp_path: Path) -> None:
    write(tmp_path / "r")
    with gzip.open(tmp_path / "r" / "bike_gps.jsonl.gz") as fh:
        lines = [orjson.loads(x) for x in fh]
    assert lines[0] == {"k": "B1", "t": 1000, "v": '{"bike_id":"B1","ts":1000}'}
    assert set(lines[1]) == {"k", "t", "vb"} and lines[1]["k"] is None


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    write(tmp_path / "a", note=1)
    write(tmp_path / "b", note=1)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    header = (tmp_path / "a" / "bike_gps.jsonl.gz").read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0" and not header[3] & 0x08  # mtime 0, no FNAME flag


def test_manifest_contents(tmp_path: Path) -> None:
    rec = write(tmp_path / "r", seed=7)
    m = orjson.loads((tmp_path / "r" / "manifest.json").read_bytes())
    assert m["format"] == FORMAT and m["source"] == "unit test" and m["extra"] == {"seed": 7}
    assert list(m["feeds"]) == ["bike_gps", "sensor_telemetry", "incident_events"]
    bike = m["feeds"]["bike_gps"]
    assert bike["topic"] == "citystream.bike.gps" and bike["file"] == "bike_gps.jsonl.gz"
    assert (bike["records"], bike["first_ts"], bike["last_ts"], bike["ordered"]) == (
        4,
        1000,
        2000,
        False,
    )
    assert m["feeds"]["incident_events"]["ordered"] is True
    digest = hashlib.sha256((tmp_path / "r" / "bike_gps.jsonl.gz").read_bytes()).hexdigest()
    assert bike["sha256"] == digest
    assert (rec.records, rec.first_ts, rec.last_ts) == (6, 500, 2000)
    assert rec.topic("sensor_telemetry") == "citystream.sensor.telemetry"


def test_verify_detects_a_changed_file(tmp_path: Path) -> None:
    rec = write(tmp_path / "r")
    rec.verify()
    path = tmp_path / "r" / "sensor_telemetry.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"k":"S1","t":500,"v":"x"}\n', mtime=0))
    with pytest.raises(RecordingError, match="checksum mismatch for feed 'sensor_telemetry'"):
        rec.verify()


def test_open_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="recording directory not found"):
        Recording.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        Recording.open(tmp_path / "empty")
    write(tmp_path / "r")
    manifest = tmp_path / "r" / "manifest.json"
    m = orjson.loads(manifest.read_bytes())
    manifest.write_bytes(orjson.dumps({**m, "format": "citystream-recording/9"}))
    with pytest.raises(RecordingError, match="unknown recording format 'citystream-recording/9'"):
        Recording.open(tmp_path / "r")
    manifest.write_bytes(b"{not json")
    with pytest.raises(RecordingError, match="not valid JSON"):
        Recording.open(tmp_path / "r")
    manifest.write_bytes(orjson.dumps(m))
    (tmp_path / "r" / "bike_gps.jsonl.gz").unlink()
    with pytest.raises(RecordingError, match="'bike_gps' file 'bike_gps.jsonl.gz' is missing"):
        Recording.open(tmp_path / "r")


def test_unknown_feed_and_bad_lines(tmp_path: Path) -> None:
    rec = write(tmp_path / "r")
    with pytest.raises(KeyError, match="no feed 'taxi_gps'"):
        rec.iter_merged(["taxi_gps"])
    (tmp_path / "r" / "sensor_telemetry.jsonl.gz").write_bytes(gzip.compress(b'{"k":"S1"}\n'))
    with pytest.raises(RecordingError, match="sensor_telemetry.jsonl.gz:1: bad line"):
        list(rec.iter_feed("sensor_telemetry"))


def test_writer_refuses_and_overwrites(tmp_path: Path) -> None:
    write(tmp_path / "r")
    with pytest.raises(FileExistsError, match="already holds a recording"):
        RecordingWriter(tmp_path / "r", "again")
    with RecordingWriter(tmp_path / "r", "again", overwrite=True) as w:
        w.add("sensor_telemetry", "S9", 9, b"{}")
    rec = Recording.open(tmp_path / "r")
    assert rec.feeds == ("sensor_telemetry",) and rec.source == "again"
    assert not (tmp_path / "r" / "bike_gps.jsonl.gz").exists()  # no stale feed left behind


def test_writer_rejects_bad_input_and_failed_writes_leave_no_manifest(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), RecordingWriter(tmp_path / "r", "t") as w:
        with pytest.raises(ValueError, match="unknown feed 'taxi'"):
            w.add("taxi", "k", 1, b"")
        with pytest.raises(ValueError, match="not encodable as UTF-8"):
            w.add("bike_gps", "k", 1, "lone \udc80 surrogate")
        with pytest.raises(TypeError, match="key must be str or None"):
            w.add("bike_gps", 7, 1, b"")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="epoch milliseconds"):
            w.add("bike_gps", "k", 1.5, b"")  # type: ignore[arg-type]
        w.add("bike_gps", "k", 1, b"x")
        raise RuntimeError("producer died")
    assert not (tmp_path / "r" / "manifest.json").exists()


def test_writer_streams_to_disk(tmp_path: Path) -> None:
    w = RecordingWriter(tmp_path / "r", "t")
    rng = random.Random(1)
    for i in range(1_000):
        w.add(
            "bike_gps", str(i), i, rng.randbytes(1024)
        )  # incompressible, not UTF-8: ~1 MB of gzip
    assert (tmp_path / "r" / "bike_gps.jsonl.gz").stat().st_size > 500_000  # written before close
    w.close()
    assert Recording.open(tmp_path / "r").records == 1_000


def test_merge_order_ties_by_feed_then_line(tmp_path: Path) -> None:
    msgs = [
        RecordedMessage("incident_events", "C1", 10, b"i10"),
        RecordedMessage("sensor_telemetry", "S1", 10, b"s10a"),
        RecordedMessage("bike_gps", "B1", 10, b"b10"),
        RecordedMessage("sensor_telemetry", "S1", 10, b"s10b"),
        RecordedMessage("bike_gps", "B1", 5, b"b5"),
        RecordedMessage("incident_events", "C1", 20, b"i20"),
        RecordedMessage("sensor_telemetry", "S2", 15, b"s15"),
    ]
    rec = write(tmp_path / "r", msgs)
    values = [m.value for m in rec.iter_merged()]
    assert values == [b"b10", b"b5", b"s10a", b"s10b", b"i10", b"s15", b"i20"]
    # bike_gps is out of order (10 then 5): its own line order is kept, the merge is by time
    assert [m.value for m in rec.iter_merged(["sensor_telemetry", "incident_events"])] == [
        b"s10a",
        b"s10b",
        b"i10",
        b"s15",
        b"i20",
    ]
    assert [m.value for m in rec.iter_merged(from_ts=11)] == [b"s15", b"i20"]
    assert [m.value for m in rec.iter_merged(["incident_events", "sensor_telemetry"], 10, 20)] == [
        b"i10",
        b"s10a",
        b"s10b",
        b"s15",
    ]  # feed order as asked, to_ts exclusive


def test_merged_view_is_reiterable(tmp_path: Path) -> None:
    rec = write(tmp_path / "r")
    view = rec.merged(["bike_gps"])
    assert list(view) == list(view) == list(rec.iter_merged(["bike_gps"]))
