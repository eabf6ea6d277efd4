"""Encode a slice of simulated fixes as ``citystream.bike.gps`` messages (``docs/schemas.md``).

Either one message per fix (key = ``bike_id``) or operator batches (key = operator): one batch per
operator per second of event time, ``{"operator": .., "fixes": [..]}``, whose event time is its
newest fix. ``ts`` is epoch milliseconds; lat/lon carry 6 decimals (~0.1 m) as operators send them.
"""

from __future__ import annotations

__all__ = ["encode_fixes", "encode_batches"]

from collections.abc import Iterator

import numpy as np
import orjson

from replay.simulate.bikes import OPERATORS, SliceFixes

_OPS = np.array(OPERATORS)


def encode_fixes(fx: SliceFixes, ids: np.ndarray, op: np.ndarray) -> Iterator[tuple[str, int, bytes]]:
    """``(key, ts_ms, value)`` for every fix, in slice order.

    Example
    -------
    >>> fx = SliceFixes(np.array([0]), np.array([1000]), np.array([118.1]), np.array([24.5]), np.array([True]))
    >>> list(encode_fixes(fx, np.array(["MT-000001"]), np.array([0])))
    [('MT-000001', 1000, b'{"bike_id":"MT-000001","operator":"meituan","ts":1000,"lat":24.5,"lon":118.1,"locked":true}')]
    """
    dumps = orjson.dumps
    cols = (ids[fx.bike].tolist(), _OPS[op[fx.bike]].tolist(), fx.ts.tolist(), fx.lat.tolist(),
            fx.lon.tolist(), fx.locked.tolist())
    for b, o, t, la, lo, lk in zip(*cols, strict=True):
        yield b, t, dumps({"bike_id": b, "operator": o, "ts": t, "lat": la, "lon": lo, "locked": lk})


def encode_batches(fx: SliceFixes, ids: np.ndarray, op: np.ndarray) -> Iterator[tuple[str, int, bytes]]:
    """``(operator, ts_ms, value)`` per operator batch, batches in event-time order.

    Example
    -------
    >>> fx = SliceFixes(np.array([0, 1, 0]), np.array([1000, 1500, 2100]), np.full(3, 118.1),
    ...                 np.full(3, 24.5), np.array([True, True, False]))
    >>> [(k, t, len(orjson.loads(v)["fixes"])) for k, t, v in encode_batches(fx, np.array(["MT-1", "MT-2"]), np.array([0, 0]))]
    [('meituan', 1500, 2), ('meituan', 2100, 1)]
    """
    if not len(fx):
        return
    o = op[fx.bike]
    sec = fx.ts // 1000
    order = np.lexsort((np.arange(len(fx)), o, sec))
    key_s, key_o = sec[order], o[order]
    cut = np.flatnonzero((np.diff(key_s) != 0) | (np.diff(key_o) != 0)) + 1
    starts, ends = np.concatenate([[0], cut]), np.concatenate([cut, [len(order)]])
    bike, ts = ids[fx.bike[order]].tolist(), fx.ts[order].tolist()
    lat, lon, locked = fx.lat[order].tolist(), fx.lon[order].tolist(), fx.locked[order].tolist()
    batches = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        fixes = [{"bike_id": bike[j], "ts": ts[j], "lat": lat[j], "lon": lon[j], "locked": locked[j]}
                 for j in range(a, b)]
        name = OPERATORS[int(key_o[a])]
        batches.append((max(ts[a:b]), a, name, orjson.dumps({"operator": name, "fixes": fixes})))
    for t, _, name, value in sorted(batches):
        yield name, t, value
