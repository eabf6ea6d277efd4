"""Decode and validate shared-bike GPS messages into columnar batches.

A message on the GPS topic is one fix, an operator batch ``{"operator": ..., "fixes": [...]}`` or a
bare array of fixes (see ``docs/schemas.md``). Decoding yields a :class:`FixBatch` of the valid fixes
(numpy columns, so geometry and counting run vectorized) and one :class:`DeadLetter` per bad fix or
bad message, each with a reason code and a human-readable detail.
"""

from __future__ import annotations

__all__ = ["DeadLetter", "FixBatch", "decode_gps", "decode_gps_many", "REASONS"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from models.timefmt import MAX_TS_MS, MIN_TS_MS, parse_ts_ms

#: Reason codes of dead letters (stable: they are metric labels and a ClickHouse column).
REASONS = (
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "out_of_range",
    "bad_timestamp",
)

_REQUIRED = ("bike_id", "ts", "lat", "lon", "locked")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with why.

    ``item`` is the index of the fix inside a batch message, or -1 when the whole message is bad.
    ``payload`` holds the offending bytes (the single fix re-encoded, or the whole message).
    """

    reason: str
    detail: str
    item: int
    payload: bytes


@dataclass(slots=True)
class FixBatch:
    """Valid GPS fixes as columns. ``ts`` is epoch ms (UTC); ``locked`` is True when the lock is closed.

    Example
    -------
    >>> b = FixBatch.from_rows([("MT-1", "meituan", 1795244405000, 24.48, 118.09, True)])
    >>> len(b), b.bike_id[0], int(b.ts[0])
    (1, 'MT-1', 1795244405000)
    >>> FixBatch.from_json(b.to_json()).bike_id
    ['MT-1']
    """

    bike_id: list[str] = field(default_factory=list)
    operator: list[str] = field(default_factory=list)
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    lat: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    lon: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    locked: np.ndarray = field(default_factory=lambda: np.empty(0, np.bool_))

    def __len__(self) -> int:
        return len(self.bike_id)

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, int, float, float, bool]]) -> FixBatch:
        """Build from ``(bike_id, operator, ts_ms, lat, lon, locked)`` tuples."""
        if not rows:
            return cls()
        n = len(rows)
        col = [itemgetter(i) for i in range(6)]  # one C-level pass per column (zip(*rows) costs ~50% more)
        return cls(
            list(map(col[0], rows)), list(map(col[1], rows)), np.fromiter(map(col[2], rows), np.int64, n),
            np.fromiter(map(col[3], rows), np.float64, n), np.fromiter(map(col[4], rows), np.float64, n),
            np.fromiter(map(col[5], rows), np.bool_, n),
        )

    def take(self, index: np.ndarray) -> FixBatch:
        """The fixes at ``index`` (integer positions), in that order."""
        idx = index.tolist()
        return FixBatch(
            [self.bike_id[i] for i in idx], [self.operator[i] for i in idx],
            self.ts[index], self.lat[index], self.lon[index], self.locked[index],
        )

    def to_json(self) -> bytes:
        """Columnar JSON, the format of the internal repartitioned fixes topic."""
        return orjson.dumps(
            {"bike_id": self.bike_id, "operator": self.operator, "ts": self.ts, "lat": self.lat,
             "lon": self.lon, "locked": self.locked},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )

    @classmethod
    def from_json(cls, data: bytes) -> FixBatch:
        """Inverse of :meth:`to_json`."""
        d = orjson.loads(data)
        return cls(
            d["bike_id"], d["operator"], np.asarray(d["ts"], np.int64), np.asarray(d["lat"], np.float64),
            np.asarray(d["lon"], np.float64), np.asarray(d["locked"], np.bool_),
        )

    @staticmethod
    def concat(batches: list[FixBatch]) -> FixBatch:
        """One batch holding all fixes of ``batches`` in order."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return FixBatch()
        return FixBatch(
            [x for b in batches for x in b.bike_id], [x for b in batches for x in b.operator],
            np.concatenate([b.ts for b in batches]), np.concatenate([b.lat for b in batches]),
            np.concatenate([b.lon for b in batches]), np.concatenate([b.locked for b in batches]),
        )


def _is_num(v: Any) -> bool:
    return (isinstance(v, float) or isinstance(v, int)) and not isinstance(v, bool)


def _check_fix(f: Any, default_operator: Any) -> tuple[str, str] | tuple[str, str, int, float, float, bool]:
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


def decode_gps(value: bytes | None) -> tuple[FixBatch, list[DeadLetter]]:
    """Decode one GPS message into its valid fixes and its dead letters.

    Example
    -------
    >>> ok, bad = decode_gps(b'{"operator":"hellobike","fixes":[{"bike_id":"HB-1","ts":1795244405000,'
    ...                      b'"lat":24.48,"lon":118.09,"locked":true},{"bike_id":"HB-2","lat":999}]}')
    >>> len(ok), [(d.reason, d.item) for d in bad]
    (1, [('missing_field', 1)])
    >>> decode_gps(b'{oops')[1][0].reason
    'invalid_json'
    """
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return FixBatch(), [DeadLetter("invalid_json", f"invalid JSON: {exc}"[:200], -1, value or b"")]
    default_op: Any = None
    if isinstance(doc, dict) and "fixes" in doc:
        items, default_op = doc["fixes"], doc.get("operator")
        if not isinstance(items, list):
            return FixBatch(), [DeadLetter("wrong_type", "'fixes' must be an array", -1, value or b"")]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    single = not (isinstance(doc, list) or (isinstance(doc, dict) and "fixes" in doc))
    rows: list[tuple[str, str, int, float, float, bool]] = []
    dead: list[DeadLetter] = []
    for i, f in enumerate(items):
        checked = _check_fix(f, default_op)
        if len(checked) == 2:
            payload = value or b"" if single else orjson.dumps(f)
            dead.append(DeadLetter(checked[0], checked[1], -1 if single else i, payload))
        else:
            rows.append(checked)  # type: ignore[arg-type]
    return FixBatch.from_rows(rows), dead


def decode_gps_many(values: Sequence[bytes | None]) -> tuple[FixBatch, list[tuple[int, DeadLetter]]]:
    """:func:`decode_gps` of many messages at once: one batch of every valid fix (in message order) and
    each dead letter with the index of its message. The same rules; one numpy batch instead of one per
    message, which dominated the cost of single-fix messages.

    Example
    -------
    >>> ok, bad = decode_gps_many([b'{"bike_id":"HB-1","operator":"hellobike","ts":1795244405000,"lat":24.48,'
    ...                            b'"lon":118.09,"locked":true}', b'{oops'])
    >>> len(ok), [(i, d.reason) for i, d in bad]
    (1, [(1, 'invalid_json')])
    """
    rows: list[tuple[str, str, int, float, float, bool]] = []
    dead: list[tuple[int, DeadLetter]] = []
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for m, value in enumerate(values):
        try:
            doc = loads(value or b"")
        except decode_error:
            ok, bad = decode_gps(value)  # the slow path builds the dead letter exactly as decode_gps does
            dead += [(m, d) for d in bad]
            continue
        if isinstance(doc, dict) and "fixes" not in doc:  # one fix: the common case, inline
            checked = _check_fix(doc, None)
            if len(checked) == 2:
                dead.append((m, DeadLetter(checked[0], checked[1], -1, value or b"")))
            else:
                rows.append(checked)  # type: ignore[arg-type]
            continue
        if isinstance(doc, dict) and isinstance(doc["fixes"], list):  # an operator batch, inline
            default_op = doc.get("operator")
            for i, f in enumerate(doc["fixes"]):
                checked = _check_fix(f, default_op)
                if len(checked) == 2:
                    dead.append((m, DeadLetter(checked[0], checked[1], i, orjson.dumps(f))))
                else:
                    rows.append(checked)  # type: ignore[arg-type]
            continue
        ok, bad = decode_gps(value)  # arrays and malformed batches: rare
        if len(ok):
            rows += zip(ok.bike_id, ok.operator, ok.ts.tolist(), ok.lat.tolist(), ok.lon.tolist(),
                        ok.locked.tolist(), strict=True)
        dead += [(m, d) for d in bad]
    return FixBatch.from_rows(rows), dead
