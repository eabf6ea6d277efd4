"""Hold-back buffer: fixes wait until event time passes them, then leave in per-bike time order.

Fixes are kept in chunks, each sorted by ``ts``; releasing up to a watermark takes a prefix of each
chunk (views, no copy of what stays), so the cost follows what leaves, not what waits.
"""

from __future__ import annotations

__all__ = ["HeldFixes", "HELD_DTYPE"]

import numpy as np
from numpy.typing import NDArray

HELD_DTYPE = np.dtype([("row", "<i8"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("locked", "?")])


class HeldFixes:
    """Fixes waiting for the watermark, as structured arrays of :data:`HELD_DTYPE`.

    Example
    -------
    >>> h = HeldFixes()
    >>> h.add(np.array([(1, 30, 0.0, 0.0, True), (0, 10, 0.0, 0.0, False)], dtype=HELD_DTYPE))
    >>> h.add(np.array([(1, 20, 0.0, 0.0, True)], dtype=HELD_DTYPE))
    >>> out = h.release(25)
    >>> out["row"].tolist(), out["ts"].tolist(), len(h)
    ([0, 1], [10, 20], 1)
    """

    def __init__(self) -> None:
        self._chunks: list[NDArray[np.void]] = []

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks)

    def add(self, fixes: NDArray[np.void]) -> None:
        """Hold these fixes (any order; ties keep their order)."""
        if len(fixes):
            self._chunks.append(fixes[np.argsort(fixes["ts"], kind="stable")])

    def release(self, watermark: int) -> NDArray[np.void]:
        """Remove and return the fixes with ``ts <= watermark``, sorted by (row, ts); among equal
        (row, ts) the first held comes first."""
        out, keep = [], []
        for c in self._chunks:
            k = int(np.searchsorted(c["ts"], watermark, side="right"))
            if k:
                out.append(c[:k])
            if k < len(c):
                keep.append(c[k:] if k else c)
        self._chunks = keep
        if not out:
            return np.empty(0, HELD_DTYPE)
        fixes = out[0] if len(out) == 1 else np.concatenate(out)
        return fixes[np.lexsort((fixes["ts"], fixes["row"]))]  # type: ignore[no-any-return]

    def of_rows(self, rows: NDArray[np.int64]) -> NDArray[np.void]:
        """The held fixes of these rows (a copy; they stay held)."""
        if not self._chunks:
            return np.empty(0, HELD_DTYPE)
        every = np.concatenate(self._chunks)
        return every[np.isin(every["row"], rows)]  # type: ignore[no-any-return]

    def to_bytes(self) -> bytes:
        return np.concatenate(self._chunks).tobytes() if self._chunks else b""

    @classmethod
    def from_bytes(cls, data: bytes) -> HeldFixes:
        h = cls()
        h.add(np.frombuffer(data, dtype=HELD_DTYPE).copy())
        return h
