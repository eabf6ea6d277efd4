from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from replay.play import Pacer, loop_shift, schedule, shift_value_ts
from replay.recording import RecordedMessage, Recording, RecordingWriter


def fix(key: str, ts: int, ts_field: object) -> RecordedMessage:
    return RecordedMessage("bike_gps", key, ts, orjson.dumps({"bike_id": key, "ts": ts_field}))


T0 = 1_608_505_200_000  # 2020-12-20T23:00:00Z = 2020-12-21T07:00:00+08:00
MSGS = [
    fix("B1", T0, "2020-12-21T07:00:00+08:00"),
    fix("B2", T0 + 3_000, T0 + 3_000),
    fix("B1", T0 + 60_000, "2020-12-20T23:01:00Z"),
]


def test_speed_one_keeps_real_timing() -> None:
    assert [o for o, _ in schedule(MSGS, 1)] == [0.0, 3.0, 60.0]


def test_speed_sixty_scales_timing() -> None:
    assert [o for o, _ in schedule(MSGS, 60)] == pytest.approx([0.0, 0.05, 1.0])


def test_speed_none_is_as_fast_as_possible() -> None:
    out = list(schedule(MSGS, None))
    assert [o for o, _ in out] == [0.0, 0.0, 0.0] and [m for _, m in out] == MSGS


def test_offsets_never_go_back_for_late_messages() -> None:
    late = [fix("B1", T0 + 10_000, 0), fix("B2", T0, 0), fix("B3", T0 + 20_000, 0)]
    assert [o for o, _ in schedule(late, 1)] == [0.0, 0.0, 10.0]


def test_single_pass_is_lazy() -> None:
    def gen() -> Iterator[RecordedMessage]:
        yield MSGS[0]
        raise AssertionError("read past the first message")

    assert next(schedule(gen(), 1)) == (0.0, MSGS[0])


def test_loop_shifts_event_time_and_values_but_not_keys() -> None:
    out = list(schedule(MSGS, 1, loop_count=3))
    shift = 60_000 + 30_000  # span + mean interval (60 s over 2 gaps)
    assert loop_shift(T0, T0 + 60_000, 3) == shift
    assert [m.ts for _, m in out] == [
        T0 + i * shift + d for i in range(3) for d in (0, 3_000, 60_000)
    ]
    assert [m.key for _, m in out] == ["B1", "B2", "B1"] * 3
    assert [o for o, _ in out] == [(m.ts - T0) / 1000 for _, m in out]
    values = [orjson.loads(m.value)["ts"] for _, m in out]
    assert values[3:6] == ["2020-12-21T07:01:30+08:00", T0 + shift + 3_000, "2020-12-20T23:02:30Z"]
    assert values[6] == "2020-12-21T07:03:00+08:00"
    assert out[0][1] is MSGS[0]  # the first pass is passed through untouched


def test_loop_with_explicit_shift_and_speed() -> None:
    out = list(schedule(MSGS[:2], 10, loop_count=2, loop_shift_ms=100_000))
    assert [m.ts - T0 for _, m in out] == [0, 3_000, 100_000, 103_000]
    assert [o for o, _ in out] == pytest.approx([0.0, 0.3, 10.0, 10.3])


def test_loop_forever_and_zero_loops() -> None:
    forever = schedule([MSGS[0]], None, loop_count=None)
    assert [next(forever)[1].ts - T0 for _ in range(3)] == [0, 1_000, 2_000]
    assert list(schedule(MSGS, 1, loop_count=0)) == []
    assert list(schedule([], 1, loop_count=None)) == []


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="one-shot iterator"):
        next(schedule(iter(MSGS), 1, loop_count=2))
    with pytest.raises(ValueError, match="speed must be > 0"):
        next(schedule(MSGS, 0))


def test_loop_over_a_recording(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "r", "t") as w:
        for m in MSGS:
            w.add(m.feed, m.key, m.ts, m.value)
    rec = Recording.open(tmp_path / "r")
    out = [m for _, m in schedule(rec.merged(), None, loop_count=2)]
    assert len(out) == 6 and all(a.ts < b.ts for a, b in zip(out, out[1:], strict=False))


@pytest.mark.parametrize(
    ("value", "delta", "expected"),
    [
        (b'{"ts":"2026-11-21T07:00:05Z"}', 1_000, b'{"ts":"2026-11-21T07:00:06Z"}'),
        (b'{"ts":"2026-11-21T23:59:59+08:00"}', 2_000, b'{"ts":"2026-11-22T00:00:01+08:00"}'),
        (b'{"ts":"2026-11-21T07:00:05.250Z"}', 1_000, b'{"ts":"2026-11-21T07:00:06.250Z"}'),
        (b'{"ts":"2026-11-21T07:00:05Z"}', 250, b'{"ts":"2026-11-21T07:00:05.250Z"}'),
        (b'{"ts":"2026-11-21 07:00+0800"}', 60_000, b'{"ts":"2026-11-21 07:01+0800"}'),
        (b'{"ts":"2026-03-01T00:00:00-05:00"}', -1_000, b'{"ts":"2026-02-28T23:59:59-05:00"}'),
        (b'{"ts":1763708405000,"x":{"ts":1}}', 5, b'{"ts":1763708405005,"x":{"ts":1}}'),
        (b'{"ts":1.5}', 1, b'{"ts":2.5}'),
        (
            b'{"operator":"m","fixes":[{"ts":1},{"ts":"2026-01-01T00:00:00Z"},"junk"]}',
            60_000,
            b'{"operator":"m","fixes":[{"ts":60001},{"ts":"2026-01-01T00:01:00Z"},"junk"]}',
        ),
        (b'[{"ts":10},{"bike_id":"B"}]', 5, b'[{"ts":15},{"bike_id":"B"}]'),
        (b'{"ts":true}', 5, b'{"ts":true}'),
        (b'{"ts":"yesterday"}', 5, b'{"ts":"yesterday"}'),
        (b"\xff\xfe binary", 5, b"\xff\xfe binary"),
        (b"42", 5, b"42"),
        (b'{"ts" : 1}', 0, b'{"ts" : 1}'),
    ],
)
def test_shift_value_ts(value: bytes, delta: int, expected: bytes) -> None:
    assert shift_value_ts(value, delta) == expected


def test_pacer_sleeps_on_the_injected_clock() -> None:
    now, slept = [50.0], []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(clock=lambda: now[0], sleep=sleep)
    lateness = [pacer.sleep_until(o) for o in (0.0, 0.5, 2.0)]
    assert slept == [0.5, 1.5] and now[0] == 52.0 and lateness == [0.0, 0.0, 0.0]
    now[0] += 3.0  # the producer stalled
    assert pacer.sleep_until(4.0) == pytest.approx(1.0) and slept == [0.5, 1.5]


async def test_pacer_async() -> None:
    now, slept = [0.0], []

    async def async_sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(clock=lambda: now[0], async_sleep=async_sleep)
    pacer.start()
    now[0] = 0.25
    assert await pacer.wait_until(1.0) == 0.0 and slept == [0.75]
    assert await pacer.wait_until(0.5) == pytest.approx(0.5) and slept == [0.75]
