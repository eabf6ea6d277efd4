"""The binary ``bike.fixes`` format gives back exactly the batch it was given, or says why not."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.fix_messages import decode_fixes, encode_fixes
from models.gps import FixBatch


def _batch(n: int, seed: int) -> FixBatch:
    rng = random.Random(seed)
    alphabet = "abcXYZ019-_长乐路é\n\t\"\\"
    ids = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64))) for _ in range(n)]
    ops = [rng.choice(["meituan", "hellobike", "qingju", "青桔", "x" * 32]) for _ in range(n)]
    a = np.random.default_rng(seed)
    return FixBatch(ids, ops, a.integers(-(2**62), 2**62, n), a.normal(24.5, 30, n), a.normal(118, 60, n),
                    a.random(n) < 0.5)


def _same(a: FixBatch, b: FixBatch) -> bool:
    return (a.bike_id == b.bike_id and a.operator == b.operator and a.ts.dtype == b.ts.dtype
            and np.array_equal(a.ts, b.ts) and np.array_equal(a.lat, b.lat) and np.array_equal(a.lon, b.lon)
            and np.array_equal(a.locked, b.locked))


@pytest.mark.parametrize("n", [0, 1, 2, 4000])
def test_round_trip_is_exact_with_any_characters(n: int) -> None:
    batch = _batch(n, n)
    data = encode_fixes(batch, src=[[3, 1795244405000, True]])
    assert data[:4] == b"CSF1"
    got, extra = decode_fixes(data)
    assert _same(got, batch) and extra == {"src": [[3, 1795244405000, True]]}
    got.ts[:] = 0  # arrays own their memory: a stage may work on them in place
    assert len(data) < len(batch.to_json()) or n == 0


def test_a_nul_in_a_name_falls_back_to_json_and_still_decodes() -> None:
    batch = FixBatch(["a\0b", "c"], ["meituan", "qingju"], np.array([1, 2]), np.array([1.5, 2.5]),
                     np.array([3.5, 4.5]), np.array([True, False]))
    for b in (batch, FixBatch(["a", "c"], ["m\0t", "q"], batch.ts, batch.lat, batch.lon, batch.locked)):
        data = encode_fixes(b, src=[])
        assert data[:1] == b"{"
        got, extra = decode_fixes(data)
        assert _same(got, b) and extra == {"src": []}


def test_a_truncated_message_is_refused() -> None:
    data = encode_fixes(_batch(10, 1))
    with pytest.raises(ValueError, match="does not hold the 10 fixes"):
        decode_fixes(data[:-3])
