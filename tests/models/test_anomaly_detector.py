"""The detector interface: river-style checks (no mutation, pickle round trip, determinism), size, coverage."""

from __future__ import annotations

import copy
import math
import pickle
import random
from datetime import UTC, datetime

import pytest

from models.anomaly import make_detector

T0 = 1_795_244_400_000


def stream(n: int, seed: int = 1, interval_ms: int = 60_000) -> list[dict]:
    rng = random.Random(seed)
    return [{"ts": T0 + interval_ms * i, "value": 20.0 + 2 * math.sin(i / 50) + rng.gauss(0, 0.3)} for i in range(n)]


@pytest.mark.parametrize("kind", ["generic", "gas", "hst", "gaussian"])
def test_score_one_does_not_mutate_and_is_in_unit_interval(kind: str) -> None:
    d = make_detector(kind, seed=3)
    for x in stream(300):
        before = copy.deepcopy(x)
        s = d.score_one(x)
        assert x == before and 0.0 <= s <= 1.0
        d.learn_one(x)
        assert x == before


@pytest.mark.parametrize("kind", ["generic", "hst", "gaussian"])
def test_pickle_round_trip_gives_identical_later_scores(kind: str) -> None:
    xs = stream(600)
    a = make_detector(kind, seed=5)
    for x in xs[:300]:
        a.learn_one(x)
    b = pickle.loads(pickle.dumps(a))
    for x in xs[300:]:
        assert a.score_one(x) == b.score_one(x)
        a.learn_one(x)
        b.learn_one(x)


@pytest.mark.parametrize("kind", ["generic", "hst"])
def test_deterministic_for_a_seed(kind: str) -> None:
    def run() -> list[float]:
        d = make_detector(kind, seed=9)
        out = []
        for x in stream(400):
            out.append(d.score_one(x))
            d.learn_one(x)
        return out

    assert run() == run()


def test_aware_datetime_and_epoch_ms_score_alike() -> None:
    a, b = make_detector(), make_detector()
    for x in stream(200):
        dt = {**x, "ts": datetime.fromtimestamp(x["ts"] / 1000, UTC)}
        assert a.score_one(x) == b.score_one(dt)
        a.learn_one(x)
        b.learn_one(dt)


def _scores_after(mutate, n: int = 800, at: int = 600) -> list[float]:
    d = make_detector()
    xs = stream(n)
    out = []
    for i, x in enumerate(xs):
        y = mutate(i, dict(x), at)
        if y is None:
            continue
        out.append((i, d.score_one(y)))
        d.learn_one(y)
    return out


def test_normal_stream_has_no_alarm_and_anomalies_score_high() -> None:
    normal = [s for _, s in _scores_after(lambda i, x, at: x)]
    assert max(normal) < 0.9
    spike = dict(_scores_after(lambda i, x, at: {**x, "value": x["value"] + 5.0} if i == at else x))
    assert spike[600] > 0.99
    shift = dict(_scores_after(lambda i, x, at: {**x, "value": x["value"] + 3.0} if i >= at else x))
    assert max(shift[i] for i in range(600, 610)) > 0.9
    stuck = dict(_scores_after(lambda i, x, at: {**x, "value": 21.234} if i >= at else x))
    assert max(stuck[i] for i in range(600, 640)) > 0.9
    gap = dict(_scores_after(lambda i, x, at: None if at <= i < at + 30 else x))
    assert gap[630] > 0.99


def test_expected_interval_and_model_size() -> None:
    d = make_detector("air_quality")
    for i in range(500):
        d.learn_one({"ts": T0 + 60_000 * i, "pm25_ugm3": 30.0 + i % 7, "pm10_ugm3": 50.0 + i % 5, "no2_ugm3": 30.0})
    assert d.expected_interval_s == pytest.approx(60.0)
    assert len(pickle.dumps(d, protocol=5)) < 2_500  # 10,000 sensors < 25 MB
