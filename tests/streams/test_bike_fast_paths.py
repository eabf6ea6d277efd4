"""The fast paths of the GPS hot loop give exactly the results of the full code: fix validation, columnar
sink batches, and dead letters of raw (ingest) records."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import orjson
from prometheus_client import CollectorRegistry

from models.dead_letter import DeadLetter
from models.gps.checks import check_fix
from sinks.batching import BatchingSink, Columns
from sinks.metrics import Metrics
from streams.deadletters import send_record_dead_letters

FIX = {"bike_id": "MT-1", "operator": "meituan", "ts": 1795244405000, "lat": 24.48, "lon": 118.09, "locked": True}
VARIANTS = [
    {}, {"lat": 24}, {"lat": 99.5}, {"lon": -181.0}, {"lat": float("nan")}, {"ts": 1.7952444e12}, {"ts": True},
    {"ts": "2026-11-21T07:00:05Z"}, {"ts": 10}, {"locked": 1}, {"locked": 0.0}, {"locked": None}, {"bike_id": ""},
    {"bike_id": "x" * 65}, {"bike_id": 7}, {"operator": None}, {"operator": ""}, {"operator": "o" * 33},
    {"lat": "24.5"}, {"lat": False},
]


def _full_check(f: object, default_operator: object) -> tuple:
    """``_check_fix`` with its fast path disabled (anything but a plain dict skips it)."""

    class D(dict):
        pass

    return check_fix(D(f) if isinstance(f, dict) else f, default_operator)


def test_fix_fast_path_agrees_with_the_full_checks() -> None:
    cases = [{**FIX, **v} for v in VARIANTS]
    cases += [{k: x for k, x in FIX.items() if k != drop} for drop in FIX]
    cases += [[1], "x", None]
    for f in cases:
        for default_op in (None, "hellobike"):
            fast, full = check_fix(f, default_op), _full_check(f, default_op)
            assert fast == full, f
            assert [type(x) for x in fast] == [type(x) for x in full], f


def test_a_sink_exports_its_tables_insert_counters_at_zero_from_the_start() -> None:
    """So the first retry or refused batch is an increase for an alert (``increase()`` over a series that did not
    exist before its first sample sees nothing)."""
    registry = CollectorRegistry()
    BatchingSink(None, "bike_fixes", ("a",), Metrics.create(registry))  # type: ignore[arg-type]
    for name in ("citystream_sink_rows_total", "citystream_sink_retries_total", "citystream_sink_failures_total"):
        assert registry.get_sample_value(name, {"table": "bike_fixes"}) == 0.0, name
    assert registry.get_sample_value("citystream_sink_retries_total", {"table": "other"}) is None


def test_columnar_parts_cut_like_rows() -> None:
    def cut(parts: list) -> tuple:
        sink = BatchingSink(None, "t", ("a", "b"), Metrics.create(CollectorRegistry()))  # type: ignore[arg-type]
        for topic, p, off, part in parts:
            sink.add(part, topic, p, off)
        return sink.cut()

    rows = [("t", 1, 5, [(1, "x"), (2, "y")]), ("t", 0, 9, [(3, "z")]), ("t", 0, 2, [])]
    cols = [(t, p, o, Columns([r[0] for r in part], [r[1] for r in part])) for t, p, o, part in rows]
    expected = ([[3, 1, 2], ["z", "x", "y"]], [("t", 0, 2), ("t", 0, 9), ("t", 1, 5)])
    assert cut(rows) == expected
    assert cut(cols) == expected
    assert cut(rows[:1] + cols[1:]) == expected  # mixed parts
    assert len(cols[0][3]) == 2
    arrays = [(t, p, o, Columns(np.array([r[0] for r in part], np.int64), [r[1] for r in part])) for t, p, o, part in rows]
    got, sources = cut(arrays)  # a column that is an array in every part stays one
    assert isinstance(got[0], np.ndarray) and got[0].tolist() == [3, 1, 2] and got[1] == ["z", "x", "y"]
    assert sources == expected[1]
    got, _ = cut(cols[:1] + arrays[1:])  # arrays mixed with lists: a list
    assert got == expected[0]


def test_raw_records_dead_letter_like_events() -> None:
    sent: list[dict] = []
    counted: list[dict] = []

    async def send(**kw: object) -> asyncio.Future:
        sent.append(kw)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    metric = SimpleNamespace(labels=lambda **kw: SimpleNamespace(inc=lambda: counted.append(kw)))
    pipe = SimpleNamespace(topic=lambda short: SimpleNamespace(send=send), metrics=SimpleNamespace(dead_letters=metric))
    record = SimpleNamespace(topic="p.bike.gps", partition=2, offset=41, key=b"MT-9", timestamp=1795244405123, value=b"{")
    dead = DeadLetter("invalid_json", "invalid JSON", -1, b"{")
    futures = asyncio.run(send_record_dead_letters(pipe, [(record, dead)]))  # type: ignore[arg-type]
    assert len(futures) == 1
    value = orjson.loads(sent[0]["value"])
    assert value["source_partition"] == 2 and value["source_offset"] == 41 and value["event_ms"] == 1795244405123
    assert sent[0]["timestamp"] == 1795244405.123 and sent[0]["key"] == b"MT-9"
    assert counted == [{"topic": "p.bike.gps", "reason": "invalid_json"}]
