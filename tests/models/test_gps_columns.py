"""The column-wise GPS decoding gives exactly the results of validating fix by fix with ``_check_fix``:
the same valid fixes (values and types, in order) and the same dead letters (reason, detail, item,
payload, message), for every input shape and mix of them."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson

from models.gps import DeadLetter, FixBatch, decode_gps, decode_gps_many, decode_gps_origins
from models.gps.checks import check_fix
from models.timefmt import MAX_TS_MS, MIN_TS_MS, clock_ahead

FIX = {"bike_id": "MT-1", "operator": "meituan", "ts": 1795244405000, "lat": 24.48, "lon": 118.09, "locked": True}
VARIANTS: list[dict[str, Any]] = [
    {}, {"lat": 24}, {"lat": 99.5}, {"lon": -181.0}, {"lon": 180.0}, {"lat": -90.0}, {"ts": 1.7952444e12},
    {"ts": 1795244405000.5}, {"ts": True}, {"ts": "2026-11-21T07:00:05Z"}, {"ts": "2026-11-21T07:00:05"},
    {"ts": 10}, {"ts": 2**64 - 1}, {"ts": -(2**63)}, {"ts": MAX_TS_MS}, {"ts": MIN_TS_MS}, {"locked": 1},
    {"locked": 0}, {"locked": 0.0}, {"locked": None}, {"locked": "true"}, {"bike_id": ""}, {"bike_id": "x" * 64},
    {"bike_id": "x" * 65}, {"bike_id": 7}, {"bike_id": ["MT-1"]}, {"operator": None}, {"operator": ""},
    {"operator": "o" * 33}, {"operator": {"a": 1}}, {"operator": "qingju"}, {"lat": "24.5"}, {"lat": False},
    {"lat": None}, {"lon": 118}, {"speed_kmh": 12.5, "accuracy_m": 3}, {"bike_id": "单车-1"},
]


def _reference(values: list[bytes | None], latest: list[int] | None = None
               ) -> tuple[list[tuple[Any, ...]], list[tuple[int, DeadLetter]]]:
    """The fix-by-fix decoding: rows and dead letters as validating one fix at a time gives them (a valid fix
    dated after its message's ``latest`` is ``clock_ahead``)."""
    rows: list[tuple[Any, ...]] = []
    dead: list[tuple[int, DeadLetter]] = []
    for m, value in enumerate(values):
        try:
            doc = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            dead.append((m, DeadLetter("invalid_json", f"invalid JSON: {exc}"[:200], -1, value or b"")))
            continue
        default_op: Any = None
        if isinstance(doc, dict) and "fixes" in doc:
            items, default_op = doc["fixes"], doc.get("operator")
            if not isinstance(items, list):
                dead.append((m, DeadLetter("wrong_type", "'fixes' must be an array", -1, value or b"")))
                continue
        elif isinstance(doc, list):
            items = doc
        else:
            items = [doc]
        single = not (isinstance(doc, list) or (isinstance(doc, dict) and "fixes" in doc))
        for i, f in enumerate(items):
            checked = check_fix(f, default_op)
            if len(checked) != 2 and latest is not None and checked[2] > latest[m]:
                checked = ("clock_ahead", f"fix {clock_ahead(checked[2], latest[m])}")
            if len(checked) == 2:
                dead.append((m, DeadLetter(checked[0], checked[1], -1 if single else i,
                                           value or b"" if single else orjson.dumps(f))))
            else:
                rows.append(checked)
    return rows, dead


def _assert_same(values: list[bytes | None]) -> None:
    got, dead = decode_gps_many(values)
    rows, want_dead = _reference(values)
    want = FixBatch.from_rows(rows)  # type: ignore[arg-type]
    assert dead == want_dead
    assert got.bike_id == want.bike_id and got.operator == want.operator
    assert {type(x) for x in got.bike_id + got.operator} <= {str}
    for col in ("ts", "lat", "lon", "locked"):
        a, b = getattr(got, col), getattr(want, col)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), col
    one = [decode_gps(v) for v in values]
    assert [d for _, d in dead] == [d for _, bad in one for d in bad]
    assert got.bike_id == [b for ok, _ in one for b in ok.bike_id]
    again, origin, _ = decode_gps_origins(values)  # each valid fix names the message it came from
    assert again.bike_id == got.bike_id and origin.dtype == np.int64
    assert origin.tolist() == [m for m, (ok, _) in enumerate(one) for _ in range(len(ok))]


def _fix(rng: random.Random, i: int, operator: bool = True) -> dict[str, Any]:
    f = {**FIX, "bike_id": f"MT-{rng.randrange(30_000):07d}", "ts": FIX["ts"] + i,
         "lat": 24.5 + rng.uniform(-0.1, 0.1), "lon": 118.1 + rng.uniform(-0.1, 0.1), "locked": rng.random() < 0.7}
    if rng.random() < 0.05:
        f.update(rng.choice(VARIANTS))
    if not operator and "operator" in f and rng.random() < 0.9:
        del f["operator"]
    if rng.random() < 0.02:
        del f[rng.choice(list(f))]
    return f


def _message(rng: random.Random, i: int) -> bytes | None:
    r = rng.random()
    if r < 0.6:
        return orjson.dumps(_fix(rng, i))
    if r < 0.8:
        return orjson.dumps({"operator": rng.choice(["hellobike", "", None, 5, "q" * 40]),
                             "fixes": [_fix(rng, i, operator=False) for _ in range(rng.randrange(0, 30))]})
    if r < 0.85:
        return orjson.dumps([_fix(rng, i) for _ in range(rng.randrange(0, 5))])
    return rng.choice([b"{oops", b"", None, b"42", b'"x"', b"null", b'{"fixes": "nope"}', b'{"fixes": {}}',
                       b"[1, [2], {}]", b'{"operator": "x", "fixes": [null, 3, "s"]}', b"[]",
                       b'{"operator": "x", "fixes": []}', orjson.dumps({**FIX, "ts": 2**64 - 1})])


def test_single_fixes_all_valid_and_each_variant() -> None:
    _assert_same([orjson.dumps({**FIX, "ts": FIX["ts"] + i}) for i in range(50)])
    _assert_same([orjson.dumps({**FIX, **v}) for v in VARIANTS])
    _assert_same([orjson.dumps({k: x for k, x in FIX.items() if k != drop}) for drop in FIX])
    _assert_same([])
    _assert_same([None])


def test_batches_with_each_variant_and_default_operators() -> None:
    for default in ("hellobike", None, "", 7):
        fixes = [{**{k: x for k, x in FIX.items() if k != "operator"}, **v} for v in VARIANTS]
        _assert_same([orjson.dumps({"operator": default, "fixes": fixes})])
        _assert_same([orjson.dumps({"operator": default, "fixes": fixes}), orjson.dumps(FIX)])


def test_random_mixes_of_every_shape() -> None:
    rng = random.Random(7)
    for size in (1, 2, 10, 200, 2000):
        for _ in range(3):
            _assert_same([_message(rng, i) for i in range(size)])


def test_many_single_fixes_some_bad() -> None:
    rng = random.Random(11)
    values = [orjson.dumps(_fix(rng, i)) for i in range(5000)]
    _assert_same(values)
    _assert_same(values[:2500] + [b"{oops"] + values[2500:])


def _assert_same_with_latest(values: list[bytes | None], latest: list[int]) -> None:
    got, origin, dead = decode_gps_origins(values, np.array(latest, np.int64))
    rows, want_dead = _reference(values, latest)
    assert dead == want_dead
    assert got.bike_id == [r[0] for r in rows] and got.ts.tolist() == [r[2] for r in rows]
    assert (got.ts <= np.array(latest, np.int64)[origin]).all()


def test_fixes_dated_after_their_message_allows_are_clock_ahead() -> None:
    t = FIX["ts"]
    ahead = {**FIX, "bike_id": "MT-2", "ts": t + 3_600_000}
    values = [orjson.dumps(FIX), orjson.dumps(ahead),
              orjson.dumps({"operator": "meituan", "fixes": [{"bike_id": "MT-3"}, ahead, FIX]})]
    got, origin, dead = decode_gps_origins(values, np.array([t, t + 600_000, t + 600_000]))
    assert got.bike_id == ["MT-1", "MT-1"] and origin.tolist() == [0, 2]
    assert [(m, d.reason, d.item) for m, d in dead] == [(1, "clock_ahead", -1), (2, "missing_field", 0),
                                                       (2, "clock_ahead", 1)]
    assert dead[0][1].payload == values[1] and orjson.loads(dead[2][1].payload) == ahead
    assert "3000 s after" in dead[2][1].detail and "2026-11-21T07:10:05" in dead[2][1].detail
    assert len(decode_gps_origins(values, np.array([t + 3_600_000] * 3))[0]) == 4  # the limit itself is allowed


def test_random_mixes_with_message_limits() -> None:
    rng = random.Random(13)
    for size in (1, 10, 31, 32, 200, 2000):  # both sides of the fix-by-fix / column-wise switch
        values = [_message(rng, i) for i in range(size)]
        latest = [FIX["ts"] + i + rng.choice([-5, 0, 3, 10**6]) for i in range(size)]
        _assert_same_with_latest(values, latest)
        single = [orjson.dumps({**FIX, "ts": FIX["ts"] + i}) for i in range(size)]
        _assert_same_with_latest(single, latest)
