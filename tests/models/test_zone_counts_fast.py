"""The columnar ``ZoneMinuteCounter`` against a fix-by-fix reference (the original algorithm).

Random streams with duplicates, disorder, late and expired fixes, bikes with one or many fixes per message,
a small ring and horizon must give the same counts, tallies and per-bike state. Crash replays: the state
entries are written per batch as the agent writes them (zones, windows, bikes, evictions), a crash keeps a
prefix; a counter loaded from those bytes (or from the JSON entries of earlier versions) continues exactly as
the reference restored from the same state, and, when the crash lost the batch's bikes, as the uninterrupted
run.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import models.zone_counts.counter as zc
import models.zone_counts.state as zs
from models.gps import FixBatch
from models.zone_counts import MINUTE_MS, BikeSeen, Window, ZoneMinuteCounter, pack_windows

Outcome = tuple[int, int, int, set[tuple[int, str]], set[str]]


class Reference:
    """The original per-fix loop and state (lists of fix times and of windows per bike), kept as the
    specification; its state entries are the JSON of earlier versions."""

    def __init__(self, lateness_ms: int, horizon_ms: int, ring: int) -> None:
        self.lateness_ms, self.horizon_ms, self.ring = lateness_ms, horizon_ms, ring
        self.bikes: dict[str, BikeSeen] = {}
        self.windows: dict[tuple[int, str], Window] = {}
        self.watermark = 0

    def process(self, offset: int, batch: FixBatch, zones: np.ndarray) -> Outcome:
        accepted = duplicate = late = 0
        windows: set[tuple[int, str]] = set()
        bikes: set[str] = set()
        fresh: set[tuple[int, str]] = set()
        lateness, expired_before = self.lateness_ms, self.watermark - self.horizon_ms
        for bike_id, ts, zone, locked in zip(batch.bike_id, batch.ts.tolist(), zones.tolist(),
                                             batch.locked.tolist(), strict=True):
            seen = self.bikes.get(bike_id)
            minute = ts - ts % MINUTE_MS
            if seen is not None:
                if ts in seen.recent:
                    duplicate += 1
                    continue
                if ts < seen.last_ts - lateness:
                    late += 1
                    continue
            if minute + MINUTE_MS <= expired_before:
                late += 1
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
            bikes.add(bike_id)
            accepted += 1
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
            windows.add(key)
        return accepted, duplicate, late, windows, bikes

    def evict(self) -> list[tuple[int, str]]:
        limit = self.watermark - self.horizon_ms
        gone = [k for k in self.windows if k[0] + MINUTE_MS <= limit]
        for k in gone:
            del self.windows[k]
        return gone

    def entries(self, windows: set[tuple[int, str]], bikes: set[str]) -> list[tuple[bytes, bytes | None]]:
        out: list[tuple[bytes, bytes | None]] = [
            (f"w|0|{k[0]}|{k[1]}".encode(), orjson_window(self.windows[k])) for k in sorted(windows)
            if k in self.windows]
        for b in sorted(bikes):
            s = self.bikes[b]
            floor = (s.last_ts - self.lateness_ms) // MINUTE_MS * MINUTE_MS
            out.append((b"b|" + b.encode(), BikeSeen(s.last_ts, s.recent, [k for k in s.counted if k[0] >= floor])
                        .to_bytes(0)))
        return out + [(f"w|0|{k[0]}|{k[1]}".encode(), None) for k in self.evict()]

    @classmethod
    def load(cls, params: tuple[int, int, int], table: dict[bytes, bytes]) -> Reference:
        r = cls(*params)
        for k, v in table.items():
            if k.startswith(b"w|0|"):
                _, _, m, z = k.decode().split("|", 3)
                r.windows[(int(m), z)] = Window.from_bytes(v)
            elif k.startswith(b"b|"):
                _, seen = BikeSeen.from_bytes(v)
                r.bikes[k[2:].decode()] = seen
                r.watermark = max(r.watermark, seen.last_ts)
        return r


def orjson_window(w: Window) -> bytes:
    """A window entry of earlier versions."""
    return f"[{w.fixes},{w.bikes},{w.locked},{w.last_offset}]".encode()


def outcome(c: ZoneMinuteCounter, out: zc.BatchOutcome) -> Outcome:
    keys = c.window_keys(out.windows)
    ids = c.bike_ids_of(out.bikes)
    assert len(set(keys)) == len(keys) and len(set(ids)) == len(ids)
    return out.accepted, out.duplicate, out.late, set(keys), set(ids)


def state(c: ZoneMinuteCounter | Reference) -> tuple:
    """Windows, bikes (trimmed, counted windows sorted) and watermark."""
    if isinstance(c, Reference):
        bikes = {}
        for b, s in c.bikes.items():
            floor = (s.last_ts - c.lateness_ms) // MINUTE_MS * MINUTE_MS
            bikes[b] = (s.last_ts, s.recent, sorted(k for k in s.counted if k[0] >= floor))
        return c.windows, bikes, c.watermark
    views = {b: c.bike(b) for b in c.bike_ids()}
    return c.windows, {b: (s.last_ts, s.recent, sorted(s.counted)) for b, s in views.items() if s}, c.watermark


def entries(c: ZoneMinuteCounter, windows: list[np.ndarray], bikes: list[np.ndarray]) -> list[tuple[bytes, bytes | None]]:
    """The state entries of one batch, in the agent's order (see ``streams/agents/count_zone_minutes.py``)."""
    out: list[tuple[bytes, bytes | None]] = list(c.zone_entries(0))
    c.zones_persisted = len(c.zones)
    minutes, zones, counts = c.window_state(zc.union(windows))
    out += [(f"w|0|{m}|{z}".encode(), v) for m, z, v in zip(minutes, zones, pack_windows(counts), strict=True)]
    out += [(k, v) for _, k, v in c.bike_entries(0, zc.union(bikes))]
    return out + [(f"w|0|{m}|{z}".encode(), None) for m, z in c.window_keys(c.evict())]


def apply(table: dict[bytes, bytes], batch_entries: list[tuple[bytes, bytes | None]]) -> None:
    for k, v in batch_entries:
        if v is None:
            table.pop(k, None)
        else:
            table[k] = v


def _stream(rng: random.Random, n_bikes: int, n_fixes: int, step_ms: int, laggards: bool = False) -> list[tuple]:
    """Fixes of ``n_bikes``, a few resent, out of order or late; with ``laggards`` some bikes' clocks run far
    behind the others (their fixes fall in expired windows)."""
    clock = {f"B{b}": rng.randrange(0, 120_000) for b in range(n_bikes)}
    behind = {b: (rng.random() < 0.2) * 3_600_000 for b in clock} if laggards else dict.fromkeys(clock, 0)
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
        rows.append((bike, "op", 10**7 + ts - behind[bike], 24.45, 118.1, rng.random() < 0.5))
    return rows


def _fleet(rng: random.Random, n_bikes: int, minutes: int, period_ms: int) -> list[tuple]:
    """The common shape: each bike one fix every ``period_ms`` (jittered), in event-time order, a few resent."""
    rows = [(f"B{b}", "op", 10**7 + rng.randrange(period_ms) + k * period_ms + rng.randrange(-500, 500), 24.45,
             118.1, rng.random() < 0.7) for b in range(n_bikes) for k in range(minutes * MINUTE_MS // period_ms)]
    rows.sort(key=lambda r: r[2])
    for _ in range(len(rows) // 50):
        i = rng.randrange(len(rows))
        rows.insert(min(len(rows), i + rng.randrange(1, 400)), rows[i])
    return rows


def _zones(batch: FixBatch, rng_seed: int, n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    return np.array([f"g{z}" for z in rng.integers(0, n, len(batch))])


def _messages(rng: random.Random, rows: list[tuple], sizes: list[int]) -> list[FixBatch]:
    msgs, i = [], 0
    while i < len(rows):
        size = rng.choice(sizes)
        msgs.append(FixBatch.from_rows(rows[i:i + size]))
        i += size
    return msgs


def _scenario(seed: int) -> tuple[tuple[int, int, int], list[FixBatch], list[np.ndarray]]:
    rng = random.Random(seed)
    ring = rng.choice([2, 3, 4, 16])
    lateness = rng.choice([20_000, 60_000, 300_000])
    params = (lateness, lateness + rng.choice([60_000, 120_000, 3_600_000]), ring)
    if seed % 3 == 2:
        rows = _fleet(rng, rng.choice([30, 200]), rng.choice([3, 8]), rng.choice([5_000, 30_000]))
        sizes = [20, 100, 300]
    else:
        rows = _stream(rng, rng.choice([1, 3, 20, 60]), 800, rng.choice([2_000, 15_000, 40_000]), seed % 3 == 1)
        sizes = [1, 2, 5, 30, 100, 400]
    msgs = _messages(rng, rows, sizes)
    n_zones = rng.choice([1, 3, 12])
    return params, msgs, [_zones(b, seed * 1000 + o, n_zones) for o, b in enumerate(msgs)]


@pytest.fixture(params=[1, 16, 10**9], ids=["rounds", "default", "replay"])
def small_round(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Force the vectorized rounds, the default split, or fix-by-fix for any bike with several fixes."""
    monkeypatch.setattr(zc, "_SMALL_ROUND", request.param)
    return request.param


@pytest.mark.parametrize("seed", range(30))
def test_process_matches_the_reference(seed: int, small_round: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zs, "_COUNTED_WIDTH", random.Random(seed).choice([1, 2, 16]))  # widening
    monkeypatch.setattr(zs, "_CAPACITY", random.Random(seed).choice([1, 7, 1024]))  # growing
    params, msgs, zones = _scenario(seed)
    ref, new = Reference(*params), ZoneMinuteCounter(*params)
    for offset, (batch, z) in enumerate(zip(msgs, zones, strict=True)):
        assert outcome(new, new.process(offset, batch, z)) == ref.process(offset, batch, z)
        assert state(new) == state(ref)
        if offset % 7 == 0:
            gone = new.window_keys(new.evict())
            assert len(gone) == len(set(gone)) and set(gone) == set(ref.evict())
    assert all(type(k[0]) is int and type(k[1]) is str for k in new.windows)


@pytest.mark.parametrize("seed", range(30))
def test_restart_from_the_persisted_entries(seed: int, small_round: Any) -> None:
    """Crash mid-batch (a prefix of its entries persisted), load, re-apply the batches from there on."""
    params, msgs, zones = _scenario(seed)
    rng = random.Random(seed)
    batches, i = [], 0
    while i < len(msgs):
        size = rng.choice([1, 1, 2, 4])
        batches.append(list(range(i, min(i + size, len(msgs)))))
        i += size

    def run(c: Any, start: int, table: dict[bytes, bytes], log: list) -> list[list[Outcome]]:
        tallies = []
        for offsets in batches[start:]:
            outs = []
            if isinstance(c, Reference):
                windows: set[tuple[int, str]] = set()
                bikes: set[str] = set()
                for o in offsets:
                    outs.append(c.process(o, msgs[o], zones[o]))
                    windows |= outs[-1][3]
                    bikes |= outs[-1][4]
                batch_entries = c.entries(windows, bikes)
            else:
                raw = [c.process(o, msgs[o], zones[o]) for o in offsets]
                outs = [outcome(c, r) for r in raw]
                batch_entries = entries(c, [r.windows for r in raw], [r.bikes for r in raw])
            log.append(batch_entries)
            apply(table, batch_entries)
            tallies.append(outs)
        return tallies

    ref_log: list = []
    new_log: list = []
    ref_all = run(Reference(*params), 0, {}, ref_log)
    new_u = ZoneMinuteCounter(*params)
    new_all = run(new_u, 0, {}, new_log)
    assert [[o[:3] for o in b] for b in new_all] == [[o[:3] for o in b] for b in ref_all]

    crash = rng.randrange(len(batches))
    new_table: dict[bytes, bytes] = {}
    ref_table: dict[bytes, bytes] = {}
    for b in range(crash):
        apply(new_table, new_log[b])
        apply(ref_table, ref_log[b])
    cut = rng.randrange(len(new_log[crash]) + 1)
    apply(new_table, new_log[crash][:cut])
    kept = {(k, v is None) for k, v in new_log[crash][:cut]}
    apply(ref_table, [e for e in ref_log[crash] if (e[0], e[1] is None) in kept])
    bikes_lost = all(not k.startswith(b"b|") for k, _ in kept)

    ref_r = Reference.load(params, ref_table)
    new_r = ZoneMinuteCounter(*params).load(0, list(new_table.items()))
    new_j = ZoneMinuteCounter(*params).load(0, list(ref_table.items()))  # the JSON entries of earlier versions
    assert state(new_r) == state(ref_r) == state(new_j)
    tallies = [run(c, crash, {}, []) for c in (ref_r, new_r, new_j)]
    assert tallies[1] == tallies[0] == tallies[2]
    assert state(new_r) == state(ref_r) == state(new_j)
    if bikes_lost:  # the designed crash: windows newer than their bikes; no double count, same tallies
        assert [[o[:3] for o in b] for b in tallies[1]] == [[o[:3] for o in b] for b in new_all[crash:]]
        assert state(new_r) == state(new_u)


def test_a_window_new_in_the_call_takes_several_fixes_of_the_message() -> None:
    c = ZoneMinuteCounter(lateness_ms=300_000)
    b = FixBatch.from_rows([("A", "op", 60_000, 0, 0, True), ("B", "op", 61_000, 0, 0, False),
                            ("A", "op", 62_000, 0, 0, True)])
    out = c.process(7, b, np.array(["z", "z", "z"]))
    assert out.accepted == 3 and c.windows[(60_000, "z")] == Window(fixes=3, bikes=2, locked=2, last_offset=7)
    again = ZoneMinuteCounter(lateness_ms=300_000)
    again.restore_window((60_000, "z"), c.windows[(60_000, "z")])
    out = again.process(7, b, np.array(["z", "z", "z"]))  # re-delivered after a crash: counts stay
    assert out.accepted == 3 and len(out.windows) == 0
    assert again.windows[(60_000, "z")] == Window(fixes=3, bikes=2, locked=2, last_offset=7)
    assert again.bike("A") == BikeSeen(62_000, [60_000, 62_000], [(60_000, "z")])


def test_entries_round_trip() -> None:
    c = ZoneMinuteCounter(lateness_ms=120_000, ring=3)
    rows = [("A", "op", 60_000 * k, 0.0, 0.0, True) for k in range(6)] + [("B", "op", 30_000, 0.0, 0.0, False)]
    out = c.process(0, FixBatch.from_rows(rows), np.array([f"z{k % 4}" for k in range(7)]))
    seen = c.bike("A")
    assert seen == BikeSeen(300_000, [180_000, 240_000, 300_000], [(180_000, "z3"), (240_000, "z0"), (300_000, "z1")])
    log = dict(c.zone_entries(5)) | {k: v for _, k, v in c.bike_entries(5, out.bikes)}
    # live slots only: the two head words, the newest fix, 3 recent fixes, 3 windows within the lateness
    assert log[b"z|5|1"] == b"z1" and len(log[b"b|A"]) == 8 * (3 + 3 + 3) and len(log[b"b|B"]) == 8 * (3 + 1 + 1)
    assert c.bike_bytes("A", 5) == log[b"b|A"]
    back = ZoneMinuteCounter(lateness_ms=120_000, ring=3).load(5, log.items())
    assert back.bike("A") == seen and back.bike("B") == c.bike("B") and back.watermark == 300_000
    assert ZoneMinuteCounter().load(4, log.items()).bike_ids() == []  # another partition's bikes
    w = Window(91, 2, 3, 4)  # 91: the first byte is "["
    assert Window.from_bytes(w.to_bytes()) == w == Window.from_bytes(orjson_window(w))
    assert pack_windows(np.array([[91, 2, 3, 4]])) == [w.to_bytes()]
    minutes, zones, counts = c.window_state(np.concatenate([out.windows, [12345 << 32]]))  # one not live
    assert list(zip(minutes, zones, counts.tolist(), strict=True)) == [
        (k[0], k[1], [w.fixes, w.bikes, w.locked, w.last_offset]) for k, w in sorted(c.windows.items())]


def test_the_whole_row_entries_of_earlier_versions_still_load() -> None:
    c = ZoneMinuteCounter(lateness_ms=120_000, ring=3)
    c.process(0, FixBatch.from_rows([("A", "op", 60_000 * k, 0.0, 0.0, True) for k in range(4)]),
              np.array(["z0", "z1", "z0", "z1"]))
    seen = c.bike("A")
    code = {z: i for i, z in enumerate(c.zones)}
    counted = [(m // MINUTE_MS) << 32 | code[z] for m, z in seen.counted]
    # 0xB1 | ring << 8 | partition << 24, the newest fix, the ring (right-aligned, NONE first), the windows
    old = np.array([0xB1 | 3 << 8 | 5 << 24, 180_000, zs.NONE, 120_000, 180_000, *counted]
                   + [zs.NONE] * (zs._COUNTED_WIDTH - len(counted)), "<i8").tobytes()
    back = ZoneMinuteCounter(lateness_ms=120_000, ring=3).load(5, [*c.zone_entries(5), (b"b|A", old)])
    assert back.bike("A") == BikeSeen(180_000, [120_000, 180_000], seen.counted)
    assert ZoneMinuteCounter(ring=3).load(4, [*c.zone_entries(4), (b"b|A", old)]).bike_ids() == []


def test_parameters_and_empty_batch() -> None:
    assert ZoneMinuteCounter().process(0, FixBatch(), np.array([], dtype=str)).accepted == 0
    with pytest.raises(ValueError):
        ZoneMinuteCounter(ring=1)
    with pytest.raises(ValueError):
        ZoneMinuteCounter(lateness_ms=10, horizon_ms=10)


@pytest.mark.parametrize("seed", range(10))
def test_int_zone_keys_count_like_zone_names(seed: int, small_round: Any) -> None:
    """Zones given as int keys with a namer (the grid's fast path) count exactly as the same zones by name."""
    params, msgs, zones = _scenario(seed)
    names = sorted({z for zs in zones for z in zs.tolist()})
    key_of = {n: (i * 7919) - 50 for i, n in enumerate(reversed(names))}  # any ints, not in name order
    name_of = {k: n for n, k in key_of.items()}
    by_name, by_key = ZoneMinuteCounter(*params), ZoneMinuteCounter(*params)
    for offset, (batch, z) in enumerate(zip(msgs, zones, strict=True)):
        keys = np.array([key_of[n] for n in z.tolist()], np.int64)
        assert outcome(by_key, by_key.process(offset, batch, keys, name_of.__getitem__)) == \
            outcome(by_name, by_name.process(offset, batch, z))
        assert state(by_key) == state(by_name)


def test_grid_keys_name_the_cells() -> None:
    from models.grid import GridZones

    g = GridZones(cell_m=250)
    rng = np.random.default_rng(3)
    lon, lat = 118.0 + rng.random(5000) * 0.3, 24.3 + rng.random(5000) * 0.3  # cells on both sides of 0
    assert [g.name(k) for k in g.keys(lon, lat).tolist()] == g.cells(lon, lat).tolist()
