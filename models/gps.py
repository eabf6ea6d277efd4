"""Decode and validate shared-bike GPS messages into columnar batches.

A message on the GPS topic is one fix, an operator batch ``{"operator": ..., "fixes": [...]}`` or a
bare array of fixes (see ``docs/schemas.md``). Decoding yields a :class:`FixBatch` of the valid fixes
(numpy columns, so geometry and counting run vectorized) and one :class:`DeadLetter` per bad fix or
bad message, each with a reason code and a human-readable detail.
"""

from __future__ import annotations

__all__ = ["DeadLetter", "FixBatch", "decode_gps", "decode_gps_many", "decode_gps_origins", "REASONS"]

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_, itemgetter
from typing import Any

import numpy as np
import orjson

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
    >>> FixBatch.from_doc(orjson.loads(b.to_json())).bike_id
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
        if len(idx) > 1:  # itemgetter picks in C (~40% faster than a list comprehension)
            pick = itemgetter(*idx)
            bike_id, operator = list(pick(self.bike_id)), list(pick(self.operator))
        else:
            bike_id, operator = [self.bike_id[i] for i in idx], [self.operator[i] for i in idx]
        return FixBatch(bike_id, operator, self.ts[index], self.lat[index], self.lon[index], self.locked[index])

    def to_json(self, **extra: Any) -> bytes:
        """Columnar JSON (``extra`` keys added): the fallback form of ``bike.fixes`` messages (``models.fix_messages``)."""
        return orjson.dumps(
            {"bike_id": self.bike_id, "operator": self.operator, "ts": self.ts, "lat": self.lat,
             "lon": self.lon, "locked": self.locked, **extra},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> FixBatch:
        """Inverse of :meth:`to_json`, from the decoded JSON object (extra keys ignored)."""
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
        bike_id: list[str] = []
        operator: list[str] = []
        for b in batches:
            bike_id += b.bike_id
            operator += b.operator
        return FixBatch(
            bike_id, operator, np.concatenate([b.ts for b in batches]), np.concatenate([b.lat for b in batches]),
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
    ok, bad = decode_gps_many([value])
    return ok, [d for _, d in bad]


def decode_gps_many(values: Sequence[bytes | None]) -> tuple[FixBatch, list[tuple[int, DeadLetter]]]:
    """:func:`decode_gps` of many messages at once: one batch of every valid fix (in message order) and
    each dead letter with the index of its message (in message order, then fix order).

    The fixes of all the messages (single fixes and the items of batches alike) are validated together,
    column by column (:func:`_check_columns`); only the fixes those checks reject go through
    :func:`_check_fix` one by one, which gives their dead letter, or accepts them (an integer latitude,
    an ISO timestamp, ``locked`` as 0/1).

    Example
    -------
    >>> ok, bad = decode_gps_many([b'{"bike_id":"HB-1","operator":"hellobike","ts":1795244405000,"lat":24.48,'
    ...                            b'"lon":118.09,"locked":true}', b'{oops'])
    >>> len(ok), [(i, d.reason) for i, d in bad]
    (1, [(1, 'invalid_json')])
    """
    good, _, dead = decode_gps_origins(values)
    return good, dead


def decode_gps_origins(values: Sequence[bytes | None], latest: np.ndarray | None = None
                       ) -> tuple[FixBatch, np.ndarray, list[tuple[int, DeadLetter]]]:
    """:func:`decode_gps_many`, and per valid fix the index of the message it came from (int64, ascending).

    ``latest`` (optional, epoch ms per message): the newest fix time each message may carry, e.g. its Kafka
    timestamp plus the allowed clock skew. A fix dated after it is dead-lettered as ``clock_ahead``: one unit
    whose clock runs ahead would otherwise move its source's event time, and so everyone's, into the future.

    Example
    -------
    >>> fix = b'{"bike_id":"HB-1","operator":"hellobike","ts":1795244405000,"lat":24.48,"lon":118.09,"locked":true}'
    >>> ok, origin, bad = decode_gps_origins([b'{oops', b'{"fixes":[' + fix + b',' + fix + b']}', fix])
    >>> len(ok), origin.tolist(), [i for i, _ in bad]
    (3, [1, 1, 2], [0])
    >>> ok, origin, bad = decode_gps_origins([fix, fix], latest=np.array([1795244405000, 1795244404999]))
    >>> origin.tolist(), [(i, d.reason) for i, d in bad]
    ([0], [(1, 'clock_ahead')])
    """
    if len(values) <= 1:
        return _decode_chunk(values, 0, latest)
    try:
        sizes = np.fromiter(map(_len, values), np.int64, len(values))
    except TypeError:  # a value is None
        sizes = np.fromiter((len(v) if v else 0 for v in values), np.int64, len(values))
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(ends, np.arange(_CHUNK_BYTES, int(ends[-1]), _CHUNK_BYTES), "right").tolist()
    batches, origins, dead = [], [], []
    for first, last in zip([0, *cuts], [*cuts, len(values)], strict=True):
        if first < last:
            good, origin, bad = _decode_chunk(values[first:last], first, None if latest is None else latest[first:last])
            batches.append(good)
            origins.append(origin)
            dead += bad
    if len(batches) == 1:
        return batches[0], origins[0], dead
    return FixBatch.concat(batches), np.concatenate(origins), dead


#: Bytes of messages decoded and checked at a time: their objects stay in the CPU cache between the two.
_CHUNK_BYTES = 64 * 1024


def _kept(owner: np.ndarray, bad: list[tuple[int, str, str]]) -> np.ndarray:
    """``owner`` (the message of each checked fix) without the positions of the ``bad`` fixes."""
    if not bad:
        return owner
    return np.delete(owner, [i for i, _, _ in bad])


def _decode_chunk(values: Sequence[bytes | None], first: int, latest: np.ndarray | None
                  ) -> tuple[FixBatch, np.ndarray, list[tuple[int, DeadLetter]]]:
    """:func:`decode_gps_origins` of ``values``, the messages from index ``first`` on (``latest``: theirs)."""
    dead: list[tuple[int, DeadLetter]] = []
    try:
        docs: list[Any] = list(map(_loads, values))
    except (orjson.JSONDecodeError, TypeError):  # a bad message among them: one by one
        docs = []
        for m, value in enumerate(values, first):
            try:
                docs.append(orjson.loads(value or b""))
            except orjson.JSONDecodeError as exc:
                docs.append(_INVALID)
                dead.append((m, DeadLetter("invalid_json", f"invalid JSON: {exc}"[:200], -1, value or b"")))
    types = set(map(type, docs))
    if not dead and types == {dict} and not any(map(dict.__contains__, docs, repeat("fixes"))):
        # Every message is one fix (the common feed): message first + i is fix i.
        good, bad = _check_columns(docs, None, all_dicts=True, latest=latest)
        dead += [(first + i, DeadLetter(reason, detail, -1, values[i] or b"")) for i, reason, detail in bad]
        return good, _kept(np.arange(first, first + len(docs), dtype=np.int64), bad), dead
    fixes: list[Any] = []  # the fixes of every message, in order
    defaults: list[Any] = []  # the operator each of them defaults to
    starts: list[int] = []  # per message with fixes: the position of its first fix,
    owners: list[tuple[int, bool]] = []  # its index in values, and whether it is a single fix (no item index)
    for m, doc in enumerate(docs):
        if doc is _INVALID:
            continue
        if isinstance(doc, dict) and "fixes" in doc:
            items, op, single = doc["fixes"], doc.get("operator"), False
            if not isinstance(items, list):
                dead.append((first + m, DeadLetter("wrong_type", "'fixes' must be an array", -1, values[m] or b"")))
                continue
        elif isinstance(doc, list):
            items, op, single = doc, None, False
        else:
            items, op, single = [doc], None, True
        if items:
            starts.append(len(fixes))
            owners.append((m, single))
            fixes += items
            defaults += repeat(op, len(items))
    counts = np.diff(np.array([*starts, len(fixes)], np.int64)).astype(np.intp)
    good, bad = _check_columns(fixes, defaults, latest=None if latest is None else np.repeat(
        latest[np.fromiter((m for m, _ in owners), np.intp, len(owners))], counts))
    for i, reason, detail in bad:
        k = bisect_right(starts, i) - 1
        m, single = owners[k]
        dead.append((first + m, DeadLetter(reason, detail, -1, values[m] or b"") if single
                     else DeadLetter(reason, detail, i - starts[k], orjson.dumps(fixes[i]))))
    dead.sort(key=_first)  # stable: each message's dead letters stay in fix order
    owner = np.repeat(np.fromiter((first + m for m, _ in owners), np.int64, len(owners)), counts)
    return good, _kept(owner, bad), dead


_INVALID = object()  # a message that is not JSON (already dead-lettered)
_first = itemgetter(0)
_get: Callable[..., Any] = dict.get
_len: Callable[[Any], int] = len
_loads: Callable[[Any], Any] = orjson.loads


def _checked(f: Any, default_operator: Any, latest: int | None
             ) -> tuple[str, str] | tuple[str, str, int, float, float, bool]:
    """:func:`_check_fix`, and a valid fix dated after ``latest`` (the newest time its message allows) is
    ``clock_ahead``."""
    checked = _check_fix(f, default_operator)
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


def _check_columns(
    fixes: list[Any], default_operator: Any, all_dicts: bool = False, latest: np.ndarray | None = None,
) -> tuple[FixBatch, list[tuple[int, str, str]]]:
    """:func:`_check_fix` of every fix at once: the valid fixes (in order) and ``(position, reason, detail)``
    of the bad ones. ``default_operator`` is one for all fixes, or a list of one per fix; ``all_dicts``
    says the caller knows every fix is a ``dict``; ``latest``, the newest time each fix may have
    (:func:`_checked`).

    The fast path of :func:`_check_fix` (exact types, lengths, ranges) runs column-wise, with numpy; a row
    it rejects goes through :func:`_check_fix` itself, so every decision and dead letter is that function's.
    """
    n = len(fixes)
    bad: list[tuple[int, str, str]] = []
    if n < 32:  # too few for numpy's per-call overhead: fix by fix
        rows: list[Any] = []
        for i, f in enumerate(fixes):
            checked = _checked(f, default_operator[i] if isinstance(default_operator, list) else default_operator,
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
        checked = _checked(fixes[i], default_operator[i] if isinstance(default_operator, list) else default_operator,
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
