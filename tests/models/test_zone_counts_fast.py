"""The bulk ``ZoneMinuteCounter.process`` against a fix-by-fix reference (the original algorithm).

Random streams with duplicates, disorder, late fixes, a small ring and horizon, and crash replays (state
restored from a prefix of the persisted entries, then the same messages again) must give the same counts,
tallies and per-bike state.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest

from models.gps import FixBatch
from models.zone_counts import MINUTE_MS, BatchOutcome, BikeSeen, Window, ZoneMinuteCounter


class Reference(ZoneMinuteCounter):
    """The original per-fix loop, kept as the specification."""

    def process(self, offset: int, batch: FixBatch, zones: np.ndarray) -> BatchOutcome:
        out = BatchOutcome()
        fresh: set[tuple[int, str]] = set()
        lateness, expired_before = self.lateness_ms, self.watermark - self.horizon_ms
        for bike_id, ts, zone, locked in zip(batch.bike_id, batch.ts.tolist(), zones.tolist(),
                                             batch.locked.tolist(), strict=True):
            seen = self.bikes.get(bike_id)
            minute = ts - ts % MINUTE_MS
            if seen is not None:
                if ts in seen.recent:
                    out.duplicate += 1
                    continue
                if ts < seen.last_ts - lateness:
                    out.late += 1
                    continue
            if minute + MINUTE_MS <= expired_before:
                out.late += 1
                continue
            if seen is None:
                seen = self.bikes[bike_id] = BikeSeen(ts)
            seen.last_ts = max(seen.last_ts, ts)
            horizon = seen.last_ts - lateness
            seen.recent = [t for t in seen.recent if t >= horizon][-(self.ring - 1):]
            seen.recent.append(ts)
            floor = horizon - horizon % MINUTE_MS
            seen.counted = [k for k in seen.counted if k[0] >= floor]
            key = (minute, zone)
            new_bike = key not in seen.counted
            if new_bike:
                seen.counted.append(key)
            out.bikes.add(bike_id)
            out.accepted += 1
            self.watermark = max(self.watermark, ts)
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = Window()
            if window.last_offset >= offset and key not in fresh:
                continue
            fresh.add(key)
            window.fixes += 1
            window.bikes += new_bike
            window.locked += locked
            window.last_offset = offset
            out.windows.add(key)
        return out


def _stream(rng: random.Random, n_bikes: int, n_fixes: int, step_ms: int) -> list[tuple]:
    clock = {f"B{b}": rng.randrange(0, 120_000) for b in range(n_bikes)}
    rows: list[tuple] = []
    for _ in range(n_fixes):
        bike = f"B{rng.randrange(n_bikes)}"
        r = rng.random()
        if rows and r < 0.1:
            rows.append(rng.choice(rows))  # a resend
            continue
        if r < 0.2:
            ts = clock[bike] - rng.randrange(0, 8 * step_ms)  # out of order, maybe late
        else:
            clock[bike] += rng.randrange(1, 2 * step_ms)
            ts = clock[bike]
        rows.append((bike, "op", ts, 24.45, 118.1, rng.random() < 0.5))
    return rows


def _zones(batch: FixBatch, rng_seed: int) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    return np.array([f"g{z}" for z in rng.integers(0, 3, len(batch))])


def _state(c: ZoneMinuteCounter) -> tuple:
    """Windows, bikes (trimmed, as persisted, without trimming ``c`` itself) and watermark."""
    bikes = {b: c.trim(BikeSeen(s.last_ts, list(s.recent), list(s.counted))) for b, s in c.bikes.items()}
    return c.windows, {b: (s.last_ts, s.recent, s.counted) for b, s in bikes.items()}, c.watermark


@pytest.mark.parametrize("seed", range(40))
def test_bulk_process_matches_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    ring = rng.choice([2, 3, 4, 16])
    lateness = rng.choice([20_000, 60_000, 300_000])
    params = (lateness, lateness + rng.choice([60_000, 120_000, 3_600_000]), ring)
    rows = _stream(rng, rng.choice([1, 3, 20]), 600, rng.choice([2_000, 15_000, 40_000]))
    msgs, i = [], 0
    while i < len(rows):
        size = rng.choice([1, 2, 5, 30, 100])
        msgs.append(FixBatch.from_rows(rows[i:i + size]))
        i += size
    ref, new = Reference(*params), ZoneMinuteCounter(*params)
    new._trim_at = rng.choice([0, 2, new._trim_at])  # lazy trimming of ``counted`` at any length
    for offset, batch in enumerate(msgs):
        z = _zones(batch, seed * 1000 + offset)
        a, b = ref.process(offset, batch, z), new.process(offset, batch, z)
        assert (b.accepted, b.duplicate, b.late, b.windows, b.bikes) == (
            a.accepted, a.duplicate, a.late, a.windows, a.bikes)
        assert _state(new) == _state(ref)
        assert all(type(k[0]) is int and type(k[1]) is str for k in new.windows)
    assert {b: new.bike_bytes(b, 3) for b in new.bikes} == {b: ref.bikes[b].to_bytes(3) for b in ref.bikes}


@pytest.mark.parametrize("seed", range(20))
def test_crash_replay_matches_the_reference(seed: int) -> None:
    """After a crash the windows are newer than the bikes; re-applying the messages must not double count."""
    rng = random.Random(seed)
    params = (60_000, 600_000, rng.choice([3, 16]))
    rows = _stream(rng, 5, 300, 10_000)
    msgs = [FixBatch.from_rows(rows[i:i + 20]) for i in range(0, len(rows), 20)]
    zones = [_zones(b, seed * 1000 + o) for o, b in enumerate(msgs)]
    ref = Reference(*params)
    crash_at = rng.randrange(1, len(msgs) - 1)
    for offset in range(crash_at):
        ref.process(offset, msgs[offset], zones[offset])
    bikes_before = copy.deepcopy(ref.bikes)
    ref.process(crash_at, msgs[crash_at], zones[crash_at])  # windows persisted, bikes lost in the crash
    restored = []
    for cls in (Reference, ZoneMinuteCounter):
        c = cls(*params)
        for k, w in ref.windows.items():
            c.restore_window(k, Window.from_bytes(w.to_bytes()))
        for b, s in bikes_before.items():
            c.restore_bike(b, BikeSeen.from_bytes(s.to_bytes(0))[1])
        restored.append(c)
    r, n = restored
    for offset in range(crash_at, len(msgs)):
        a, b = r.process(offset, msgs[offset], zones[offset]), n.process(offset, msgs[offset], zones[offset])
        assert (b.accepted, b.duplicate, b.late, b.windows, b.bikes) == (
            a.accepted, a.duplicate, a.late, a.windows, a.bikes)
        assert _state(n) == _state(r)


def test_a_window_new_in_the_call_takes_several_fixes_of_the_message() -> None:
    c = ZoneMinuteCounter(lateness_ms=300_000)
    b = FixBatch.from_rows([("A", "op", 60_000, 0, 0, True), ("B", "op", 61_000, 0, 0, False),
                            ("A", "op", 62_000, 0, 0, True)])
    out = c.process(7, b, np.array(["z", "z", "z"]))
    assert out.accepted == 3 and c.windows[(60_000, "z")] == Window(fixes=3, bikes=2, locked=2, last_offset=7)
    again = ZoneMinuteCounter(lateness_ms=300_000)
    again.restore_window((60_000, "z"), c.windows[(60_000, "z")])
    out = again.process(7, b, np.array(["z", "z", "z"]))  # re-delivered after a crash: counts stay
    assert out.accepted == 3 and out.windows == set()
    assert again.windows[(60_000, "z")] == Window(fixes=3, bikes=2, locked=2, last_offset=7)
    assert again.bikes["A"].counted == [(60_000, "z")]


def test_empty_batch() -> None:
    assert ZoneMinuteCounter().process(0, FixBatch(), np.array([], dtype=str)).accepted == 0
