"""Validation of decoded GPS fixes: one at a time (:func:`check_fix`, every rule and its dead-letter reason) and
whole columns at once (:func:`check_columns`, the fast path of the same rules with numpy)."""

from __future__ import annotations

__all__ = ["REASONS", "check_columns", "check_fix", "check_fix_until"]

from collections.abc import Callable
from itertools import compress, repeat
from operator import is_
from typing import Any

import numpy as np

from models.gps.batch import FixBatch
from models.timefmt import MAX_TS_MS, MIN_TS_MS, clock_ahead, parse_ts_ms

#: Reason codes of dead letters (stable: they are metric labels and a ClickHouse column).
REASONS = (
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "bad_timestamp",
    "clock_ahead",
)

_REQUIRED = ("bike_id", "ts", "lat", "lon", "locked")


def _is_num(v: Any) -> bool:
    return (isinstance(v, float) or isinstance(v, int)) and not isinstance(v, bool)


def check_fix(f: Any, default_operator: Any) -> tuple[str, str] | tuple[str, str, int, float, float, bool]:
    """Validate one decoded fix: ``(reason, detail)`` when bad, else the row tuple."""
    if type(f) is dict:  # fast path for the common well-formed fix; anything else takes the full checks below
        bike, ts, lat, lon, locked = f.get("bike_id"), f.get("ts"), f.get("lat"), f.get("lon"), f.get("locked")
        op = f.get("operator", default_operator)
        if (type(bike) is str and type(op) is str and type(ts) is int and type(lat) is float and type(lon) is float
                and (locked is True or locked is False) and 0 < len(bike) <= 64 and 0 < len(op) <= 32
                and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and MIN_TS_MS <= ts < MAX_TS_MS):
            return bike, op, ts, lat, lon, locked
    if not isinstance(f, dict):
        return "not_an_object", f"fix must be a JSON object, got {type(f).__name__}"
    missing = [k for k in _REQUIRED if k not in f]
    op = f.get("operator", default_operator)
    if op is None:
        missing.append("operator")
    if missing:
        return "missing_field", f"missing field(s): {', '.join(missing)}"
    bike, lat, lon, locked = f["bike_id"], f["lat"], f["lon"], f["locked"]
    if not isinstance(bike, str) or not 0 < len(bike) <= 64:
        return "wrong_type", "bike_id must be a non-empty string of at most 64 chars"
    if not isinstance(op, str) or not 0 < len(op) <= 32:
        return "wrong_type", "operator must be a non-empty string of at most 32 chars"
    if not _is_num(lat) or not _is_num(lon):
        return "wrong_type", f"lat/lon must be numbers, got {type(lat).__name__}/{type(lon).__name__}"
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        return "out_of_range", f"lat/lon out of range: {lat}, {lon}"
    if locked not in (True, False, 0, 1) or isinstance(locked, float):
        return "wrong_type", f"locked must be a boolean, got {locked!r}"[:120]
    try:
        ts = parse_ts_ms(f["ts"])
    except ValueError as exc:
        return "bad_timestamp", str(exc)
    return bike, op, ts, float(lat), float(lon), bool(locked)


_get: Callable[..., Any] = dict.get


def check_fix_until(f: Any, default_operator: Any, latest: int | None
             ) -> tuple[str, str] | tuple[str, str, int, float, float, bool]:
    """:func:`check_fix`, and a valid fix dated after ``latest`` (the newest time its message allows) is
    ``clock_ahead``."""
    checked = check_fix(f, default_operator)
    if len(checked) == 2 or latest is None or checked[2] <= latest:
        return checked
    return "clock_ahead", f"fix {clock_ahead(checked[2], latest)}"


def _exact(column: list[Any], kind: type, n: int) -> np.ndarray | None:
    """None when every value of ``column`` is exactly a ``kind`` (not a subclass: bools are no ints), else
    the mask of the rows where it is."""
    types = set(map(type, column))
    if len(types) == 1 and kind in types:
        return None
    return np.fromiter(map(is_, map(type, column), repeat(kind)), np.bool_, n)


def _filled(column: list[Any], ok: np.ndarray | None, fill: Any) -> list[Any]:
    """``column`` with ``fill`` where not ``ok``."""
    return column if ok is None else [v if o else fill for v, o in zip(column, ok.tolist(), strict=True)]


def check_columns(
    fixes: list[Any], default_operator: Any, all_dicts: bool = False, latest: np.ndarray | None = None,
) -> tuple[FixBatch, list[tuple[int, str, str]]]:
    """:func:`check_fix` of every fix at once: the valid fixes (in order) and ``(position, reason, detail)``
    of the bad ones. ``default_operator`` is one for all fixes, or a list of one per fix; ``all_dicts``
    says the caller knows every fix is a ``dict``; ``latest``, the newest time each fix may have
    (:func:`check_fix_until`).

    The fast path of :func:`check_fix` (exact types, lengths, ranges) runs column-wise, with numpy; a row
    it rejects goes through :func:`check_fix` itself, so every decision and dead letter is that function's.
    """
    n = len(fixes)
    bad: list[tuple[int, str, str]] = []
    if n < 32:  # too few for numpy's per-call overhead: fix by fix
        rows: list[Any] = []
        for i, f in enumerate(fixes):
            checked = check_fix_until(f, default_operator[i] if isinstance(default_operator, list) else default_operator,
                               None if latest is None else int(latest[i]))
            if len(checked) == 2:
                bad.append((i, checked[0], checked[1]))
            else:
                rows.append(checked)
        return FixBatch.from_rows(rows), bad
    typed: list[np.ndarray] = []  # per failed column-wide check: the rows that pass it
    dicts: list[Any] = fixes
    if not all_dicts and (ok := _exact(fixes, dict, n)) is not None:
        typed.append(ok)
        dicts = _filled(fixes, ok, {})
    defaults = default_operator if isinstance(default_operator, list) else repeat(default_operator)
    bike: list[Any] = list(map(_get, dicts, repeat("bike_id")))
    operator: list[Any] = list(map(_get, dicts, repeat("operator"), defaults))
    ts_col, lat_col, lon_col, locked_col = (list(map(_get, dicts, repeat(k))) for k in ("ts", "lat", "lon", "locked"))

    for column, longest in ((bike, 64), (operator, 32)):
        if (ok := _exact(column, str, n)) is not None:
            typed.append(ok)
            column = _filled(column, ok, "?")
        lengths: set[int] = set(map(len, column))
        if min(lengths) < 1 or max(lengths) > longest:
            sizes = np.fromiter(map(len, column), np.int64, n)
            typed.append((sizes > 0) & (sizes <= longest))
    if (ok := _exact(ts_col, int, n)) is not None:
        typed.append(ok)
        ts_col = _filled(ts_col, ok, MIN_TS_MS)
    try:
        ts = np.fromiter(ts_col, np.int64, n)
    except OverflowError:  # beyond int64 (JSON allows up to 2**64 - 1): out of range anyway
        ok = np.fromiter((-(2**63) <= t < 2**63 for t in ts_col), np.bool_, n)
        typed.append(ok)
        ts = np.fromiter(_filled(ts_col, ok, MIN_TS_MS), np.int64, n)
    coords = []
    for column in (lat_col, lon_col):
        if (ok := _exact(column, float, n)) is not None:
            typed.append(ok)
            column = _filled(column, ok, 0.0)
        coords.append(np.fromiter(column, np.float64, n))
    lat, lon = coords
    if (ok := _exact(locked_col, bool, n)) is not None:
        typed.append(ok)
        locked_col = _filled(locked_col, ok, False)
    locked = np.fromiter(locked_col, np.bool_, n)

    good = (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0) & (ts >= MIN_TS_MS) & (ts < MAX_TS_MS)  # NaN fails
    for ok in typed:
        good &= ok
    if latest is not None:
        good &= ts <= latest
    if good.all():
        return FixBatch(bike, operator, ts, lat, lon, locked), bad
    for i in np.flatnonzero(~good).tolist():
        checked = check_fix_until(fixes[i], default_operator[i] if isinstance(default_operator, list) else default_operator,
                           None if latest is None else int(latest[i]))
        if len(checked) == 2:
            bad.append((i, checked[0], checked[1]))
        else:  # valid after all: its values as the full checks normalize them
            bike[i], operator[i], ts[i], lat[i], lon[i], locked[i] = checked
    if not bad:
        return FixBatch(bike, operator, ts, lat, lon, locked), bad
    keep = np.ones(n, np.bool_)
    keep[[i for i, _, _ in bad]] = False
    kept = keep.tolist()
    return FixBatch(list(compress(bike, kept)), list(compress(operator, kept)), ts[keep], lat[keep], lon[keep],
                    locked[keep]), bad
