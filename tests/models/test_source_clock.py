"""The event time of a partition fed by several sources (models/source_clock.py)."""

from __future__ import annotations

import random

from models.source_clock import SourceClock


def test_time_never_passes_a_source_that_is_behind() -> None:
    """Sources advance at their own pace, interleaved at random: the clock never passes a fix a source that is
    not read to its end has still to hand over, and ends at the newest mark once every source is idle."""
    for seed in range(20):
        rng = random.Random(seed)
        streams = {src: sorted(rng.sample(range(10_000), 50)) for src in range(3)}
        pos = dict.fromkeys(streams, 0)
        clock = SourceClock(sources=3, idle_after_s=300)
        last = None
        while any(pos[s] < len(v) for s, v in streams.items()):
            src = rng.choice([s for s, v in streams.items() if pos[s] < len(v)])
            pos[src] += rng.randint(1, 5)
            handed = streams[src][:pos[src]]
            clock.update([(src, handed[-1], pos[src] >= len(streams[src]))], now=0.0)
            t = clock.time(now=0.0)
            if len(clock.newest) < 3:
                assert t is None, "a source not heard of holds the clock"
                continue
            assert t is not None and (last is None or t >= last)
            for s, v in streams.items():
                if pos[s] < len(v):  # s has more to come (all after what it handed): the clock waits for it
                    assert t <= v[pos[s] - 1] < v[pos[s]] if pos[s] else t is None
            last = t
        assert clock.time(now=0.0) == max(v[-1] for v in streams.values())


def test_a_source_silent_too_long_holds_nobody_back() -> None:
    clock = SourceClock(sources=2, idle_after_s=300, born=0.0)
    clock.update([(0, 5_000, False)], now=10.0)
    assert clock.time(now=299.0) is None  # source 1 never heard of: it may still start
    assert clock.time(now=301.0) == 5_000  # ... until it was silent longer than idle_after_s
    clock.update([(1, 1_000, False)], now=302.0)
    assert clock.time(now=303.0) == 1_000  # heard of again: it holds the clock
    assert clock.time(now=303.0 + 301) == 5_000  # both silent too long: the newest mark


def test_marks_never_go_back_and_survive_a_restart() -> None:
    clock = SourceClock(sources=2, idle_after_s=300)
    clock.update([(0, 900, False), (1, 400, True)], now=0.0)
    clock.update([(0, 700, False)], now=1.0)  # an older mark (a re-read after a rebalance) changes nothing
    assert clock.newest == {0: 900, 1: 400} and clock.time(now=1.0) == 900
    clock.update([(5, 10**15, False)], now=1.0)  # a source beyond the configured count is ignored
    restored = SourceClock.from_bytes(clock.to_bytes(), sources=2, idle_after_s=300, born=50.0)
    assert restored.newest == clock.newest and restored.idle == clock.idle
    assert restored.time(now=51.0) == 900
    assert restored.time(now=351.0) == 900  # source 0 silent since the restart too long: the newest mark


def test_waiting_names_the_sources_that_hold_the_clock_with_nothing_handed_over() -> None:
    clock = SourceClock(sources=3, idle_after_s=300, born=0.0)
    clock.update([(0, 100, False), (2, None, True)], now=1.0)  # 2: nothing ever, read to its end
    assert clock.waiting(now=2.0) == [1] and clock.time(now=2.0) is None
    assert clock.waiting(now=301.0) == []  # 1 silent too long: skipped
    clock.update([(1, None, False)], now=302.0)  # heard of, but nothing handed over: still waited for
    assert clock.waiting(now=303.0) == [1]
