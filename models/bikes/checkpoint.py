"""Per-bike checkpoints: one bike's state row and held-back fixes as self-contained bytes, so a changelog
keyed by bike holds the supervisor's state and a restarted worker rebuilds it bike by bike.

Layout: ``b"K1"``, the operator (1-byte length, UTF-8), the raw :data:`~models.bikes.state.STATE_DTYPE` row
(its operator code is local and replaced on import), then the held fixes as ``(ts, lon, lat, locked)``.
"""

from __future__ import annotations

__all__ = ["export_bikes", "import_bikes"]

from collections.abc import Iterable, Mapping

import numpy as np

from models.bikes.held import HELD_DTYPE, HeldFixes
from models.bikes.state import STATE_DTYPE, UNSEEN, BikeStates

_MAGIC = b"K1"
_HELD_FIX = np.dtype([("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("locked", "?")])


def export_bikes(states: BikeStates, held: HeldFixes, bike_ids: Iterable[str]) -> dict[str, bytes]:
    """Bytes per bike: one array slice for all rows, one packed buffer for all held fixes.

    Example
    -------
    >>> s, h = BikeStates(), HeldFixes()
    >>> r = s.rows_for(["MT-1"], ["meituan"])[0]
    >>> h.add(np.array([(r, 5, 118.1, 24.5, True)], dtype=HELD_DTYPE))
    >>> blob = export_bikes(s, h, ["MT-1"])["MT-1"]
    >>> t, g = BikeStates(), HeldFixes()
    >>> import_bikes(t, g, {"MT-1": blob}) == UNSEEN, t.data[0].tobytes() == s.data[0].tobytes(), len(g)
    (True, True, 1)
    """
    ids = list(bike_ids)
    if not ids:
        return {}
    size = STATE_DTYPE.itemsize
    rows = np.fromiter(map(states._rows.__getitem__, ids), np.int64, len(ids))
    blob = states.data[rows].tobytes()
    prefix = [_MAGIC + bytes([len(o)]) + o for o in (op.encode()[:255] for op in states.operators)]
    by_row: dict[int, bytes] = {}
    mine = held.of_rows(rows)
    if len(mine):
        mine = mine[np.argsort(mine["row"], kind="stable")]
        packed = np.empty(len(mine), _HELD_FIX)
        for name in _HELD_FIX.names or ():
            packed[name] = mine[name]
        buf, w, r = packed.tobytes(), _HELD_FIX.itemsize, mine["row"]
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        ends = np.r_[starts[1:], len(r)]
        for a, z, row in zip(starts.tolist(), ends.tolist(), r[starts].tolist(), strict=True):
            by_row[row] = buf[a * w:z * w]
    ops = states.data["operator"][rows].tolist()
    return {b: prefix[o] + blob[i * size:(i + 1) * size] + by_row.get(r, b"")
            for i, (b, o, r) in enumerate(zip(ids, ops, rows.tolist(), strict=True))}


def import_bikes(states: BikeStates, held: HeldFixes, entries: Mapping[str, bytes]) -> int:
    """Load exported bikes into ``states`` and ``held``; returns the newest fix time any of them saw."""
    size, fixes_of, newest = STATE_DTYPE.itemsize, [], UNSEEN
    for b, blob in entries.items():
        if not blob.startswith(_MAGIC):
            raise ValueError(f"not a bike export: {blob[:8]!r}")
        n = blob[2]
        op = blob[3:3 + n].decode()
        row = np.frombuffer(blob, STATE_DTYPE, 1, 3 + n).copy()
        r = int(states.rows_for([b], [op])[0])
        row["operator"] = states.operator_code(op)
        states.data[r] = row[0]
        fixes = np.frombuffer(blob, _HELD_FIX, offset=3 + n + size)
        if len(fixes):
            h = np.empty(len(fixes), HELD_DTYPE)
            h["row"] = r
            for name in _HELD_FIX.names or ():
                h[name] = fixes[name]
            fixes_of.append(h)
        newest = max(newest, int(row["max_seen"][0]))
    if fixes_of:
        held.add(np.concatenate(fixes_of))
    return newest
