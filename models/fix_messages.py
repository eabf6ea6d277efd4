"""The wire format of validated fixes between stages (``bike.fixes``): binary columns, decoded without parsing.

Every fix the ingest validates is decoded again by each stage that reads ``bike.fixes`` (zone counting, the bike
supervisor, the raw-fix sink). As columnar JSON that cost ~0.6 us a fix per reader, most of it turning JSON
numbers into Python floats and back into numpy; here the numeric columns are the arrays' own bytes, so decoding
is a copy, and the ids are one UTF-8 string split on NUL (~0.1 us a fix in all).

Layout (little-endian)::

    b"CSF1"  n: u32  ids_bytes: u32  operators_bytes: u32  extra_bytes: u32     20 bytes
    ts: i8[n]  lat: f8[n]  lon: f8[n]  locked: u1[n]
    bike ids, then operators: UTF-8, NUL-separated
    extra: a JSON object

``extra`` carries what travels with the fixes (the ingest's source marks). A batch whose ids contain NUL (the
validation allows any character but NUL is unlikely) goes as columnar JSON instead, and :func:`decode_fixes` reads both, so
messages written by an older worker during a rolling upgrade are still understood.

Example
-------
>>> b = FixBatch.from_rows([("MT-1", "meituan", 1795244405000, 24.48, 118.09, True),
...                         ("HB-7", "hellobike", 1795244406000, 24.49, 118.10, False)])
>>> data = encode_fixes(b, src=[[0, 1795244406000, False]])
>>> data[:4], len(data) < len(b.to_json(src=[[0, 1795244406000, False]]))
(b'CSF1', True)
>>> got, extra = decode_fixes(data)
>>> got.bike_id, got.operator, got.ts.tolist(), got.locked.tolist(), extra
(['MT-1', 'HB-7'], ['meituan', 'hellobike'], [1795244405000, 1795244406000], [True, False], {'src': [[0, 1795244406000, False]]})
>>> decode_fixes(b.to_json())[0].lat.tolist()  # columnar JSON (NUL in an id, or an older writer)
[24.48, 24.49]
"""

from __future__ import annotations

__all__ = ["decode_fixes", "encode_fixes"]

import struct
from typing import Any

import numpy as np
import orjson

from models.gps import FixBatch

_MAGIC = b"CSF1"
_HEAD = struct.Struct("<4sIIII")


def encode_fixes(batch: FixBatch, **extra: Any) -> bytes:
    """``batch`` (and ``extra``, JSON-serializable) as one ``bike.fixes`` message."""
    n = len(batch)
    ids, ops = "\0".join(batch.bike_id), "\0".join(batch.operator)
    if n and (ids.count("\0") != n - 1 or ops.count("\0") != n - 1):
        return batch.to_json(**extra)  # a name holds NUL: the separator would be ambiguous
    id_bytes, op_bytes, header = ids.encode(), ops.encode(), orjson.dumps(extra)
    return b"".join((
        _HEAD.pack(_MAGIC, n, len(id_bytes), len(op_bytes), len(header)),
        np.ascontiguousarray(batch.ts, "<i8").tobytes(), np.ascontiguousarray(batch.lat, "<f8").tobytes(),
        np.ascontiguousarray(batch.lon, "<f8").tobytes(), np.ascontiguousarray(batch.locked, np.bool_).tobytes(),
        id_bytes, op_bytes, header,
    ))


def decode_fixes(data: bytes) -> tuple[FixBatch, dict[str, Any]]:
    """The fixes of a ``bike.fixes`` message and its extra keys (binary or columnar JSON).

    Raises ``ValueError`` on a message that is neither (truncated, or not from this pipeline)."""
    if data[:4] != _MAGIC:
        doc = orjson.loads(data)
        return FixBatch.from_doc(doc), {k: v for k, v in doc.items() if k not in _COLUMNS}
    _, n, id_len, op_len, head_len = _HEAD.unpack_from(data)
    if len(data) != _HEAD.size + 25 * n + id_len + op_len + head_len:
        raise ValueError(f"bike.fixes message of {len(data)} bytes does not hold the {n} fixes its header says")
    at = _HEAD.size
    ts = np.frombuffer(data, "<i8", n, at).astype(np.int64)  # copies: arrays that own their memory, writable
    lat = np.frombuffer(data, "<f8", n, at + 8 * n).astype(np.float64)
    lon = np.frombuffer(data, "<f8", n, at + 16 * n).astype(np.float64)
    locked = np.frombuffer(data, np.bool_, n, at + 24 * n).copy()
    at += 25 * n
    if n:
        bike_id, operator = data[at:at + id_len].decode().split("\0"), data[at + id_len:at + id_len + op_len].decode().split("\0")
    else:
        bike_id, operator = [], []
    return FixBatch(bike_id, operator, ts, lat, lon, locked), orjson.loads(data[at + id_len + op_len:])


_COLUMNS = frozenset(("bike_id", "operator", "ts", "lat", "lon", "locked"))
