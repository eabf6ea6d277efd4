"""Decoding GPS messages (one fix, an operator batch or an array of fixes) into a :class:`FixBatch` of the valid fixes
and the dead letters of the rest."""

from __future__ import annotations

__all__ = ["decode_gps", "decode_gps_many", "decode_gps_origins"]

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from models.dead_letter import DeadLetter
from models.gps.batch import FixBatch
from models.gps.checks import check_columns


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
    column by column (:func:`~models.gps.checks.check_columns`); only the fixes those checks reject go through
    :func:`~models.gps.checks.check_fix` one by one, which gives their dead letter, or accepts them (an integer latitude,
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
        good, bad = check_columns(docs, None, all_dicts=True, latest=latest)
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
    good, bad = check_columns(fixes, defaults, latest=None if latest is None else np.repeat(
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
_len: Callable[[Any], int] = len
_loads: Callable[[Any], Any] = orjson.loads
