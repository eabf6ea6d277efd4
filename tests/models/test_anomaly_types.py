"""Each anomaly type is found on a stream with a daily cycle and noise, within a few readings; a clean stream
raises (almost) no alarm. Both designs of ``make_detector`` (calibrated ``robust`` and ``parametric``)."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable

import pytest

from models.anomaly import make_detector

T0 = 1_795_190_400_000  # 2026-11-20T16:00Z = midnight in Xiamen
MIN = 60_000
WARM = 3 * 1440  # three days of one-minute readings


def value(i: int, rng: random.Random, state: list[float]) -> float:
    state[0] = 0.5 * state[0] + rng.gauss(0, 0.5)  # AR(1) noise, sd ~0.58
    return 30.0 + 3.0 * math.sin(2 * math.pi * (i % 1440) / 1440) + state[0]


@pytest.fixture(scope="module", params=["robust", "parametric"])
def warmed(request: pytest.FixtureRequest) -> tuple[bytes, list[float]]:
    """A detector after three normal days (pickled, so every test starts from the same state)."""
    rng, state = random.Random(4), [0.0]
    d = make_detector(request.param)
    for i in range(WARM):
        d.learn_one({"ts": T0 + MIN * i, "value": value(i, rng, state)})
    return pickle.dumps(d), [rng.random(), state[0]]


def run(warmed: tuple[bytes, list[float]], change: Callable[[int, float], float | None], n: int = 240) -> list[float]:
    """Scores of ``n`` further readings, reading ``k`` changed to ``change(k, value)`` (None: not sent)."""
    d = pickle.loads(warmed[0])
    rng, state = random.Random(warmed[1][0]), [warmed[1][1]]
    out = []
    for k in range(n):
        i = WARM + k
        v = change(k, value(i, rng, state))
        if v is None:
            out.append(math.nan)
            continue
        x = {"ts": T0 + MIN * i, "value": v}
        out.append(d.score_one(x))
        d.learn_one(x)
    return out


def first_alarm(scores: list[float], start: int) -> int | None:
    return next((k - start for k in range(start, len(scores)) if scores[k] >= 0.9), None)


def test_clean_continuation_has_no_alarm(warmed: tuple[bytes, list[float]]) -> None:
    assert max(run(warmed, lambda k, v: v, n=1440)) < 0.9


def test_spike_is_flagged_on_its_reading(warmed: tuple[bytes, list[float]]) -> None:
    s = run(warmed, lambda k, v: v + 6.0 if k == 100 else v)
    assert s[100] >= 0.9 and max(s[:100]) < 0.9 and max(s[102:]) < 0.9


def test_level_shift_within_three_readings(warmed: tuple[bytes, list[float]]) -> None:
    assert first_alarm(run(warmed, lambda k, v: v + 4.0 if k >= 100 else v), 100) <= 2


def test_drift_within_half_an_hour(warmed: tuple[bytes, list[float]]) -> None:
    # a ramp of half a noise sd per reading; slower drifts are found late (see docs/anomaly.md)
    delay = first_alarm(run(warmed, lambda k, v: v + 0.3 * max(0, k - 100)), 100)
    assert delay is not None and delay <= 30


def test_stuck_value_within_a_quarter_hour(warmed: tuple[bytes, list[float]]) -> None:
    frozen: list[float] = []

    def stuck(k: int, v: float) -> float:
        if k == 100:
            frozen.append(v)
        return frozen[0] if k >= 100 else v

    delay = first_alarm(run(warmed, stuck), 100)
    assert delay is not None and delay <= 15


def test_first_reading_after_a_dropout_is_flagged(warmed: tuple[bytes, list[float]]) -> None:
    s = run(warmed, lambda k, v: None if 100 <= k < 130 else v)
    assert s[130] >= 0.9 and max(s[:100]) < 0.9


def test_expected_interval_is_exposed(warmed: tuple[bytes, list[float]]) -> None:
    assert pickle.loads(warmed[0]).expected_interval_s == pytest.approx(60.0)
