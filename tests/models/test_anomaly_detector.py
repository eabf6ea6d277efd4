"""The detector interface: river-style checks (no mutation, pickle round trip, clone and seed determinism),
score range, time formats, reporting interval and size."""

from __future__ import annotations

import copy
import math
import pickle
import random
from datetime import UTC, datetime

import pytest

from models.anomaly import CANDIDATES, make_detector

T0 = 1_795_244_400_000  # 2026-11-21T07:00Z


def stream(n: int, seed: int = 1, interval_ms: int = 60_000) -> list[dict]:
    rng = random.Random(seed)
    return [{"ts": T0 + interval_ms * i, "value": 20.0 + 2 * math.sin(i / 50) + rng.gauss(0, 0.3)} for i in range(n)]


def scores(d, xs: list[dict]) -> list[float]:
    out = []
    for x in xs:
        out.append(d.score_one(x))
        d.learn_one(x)
    return out


@pytest.mark.parametrize("kind", ["generic", "gas", *CANDIDATES[1:]])
def test_score_one_does_not_mutate_and_is_in_unit_interval(kind: str) -> None:
    d = make_detector(kind, seed=3)
    for x in stream(400):
        before = copy.deepcopy(x)
        s = d.score_one(x)
        assert x == before and 0.0 <= s <= 1.0
        d.learn_one(x)
        assert x == before


def test_score_one_does_not_change_the_detector() -> None:
    xs = stream(500)
    a, b = make_detector(), make_detector()
    for x in xs[:400]:
        a.learn_one(x)
        b.learn_one(x)
    for x in xs[400:]:
        a.score_one({**x, "value": x["value"] + 50})  # scoring an outlier must not be learned
        a.score_one(x)
        assert a.score_one(x) == b.score_one(x)
        a.learn_one(x)
        b.learn_one(x)


@pytest.mark.parametrize("kind", ["generic", "air_quality", "parametric", "hst", "snarimax"])
def test_pickle_round_trip_gives_identical_later_scores(kind: str) -> None:
    xs = stream(700)
    if kind == "air_quality":
        xs = [{"ts": x["ts"], "pm25_ugm3": x["value"], "pm10_ugm3": 2 * x["value"], "no2_ugm3": 40 - x["value"]}
              for x in xs]
    a = make_detector(kind, seed=5)
    scores(a, xs[:400])
    b = pickle.loads(pickle.dumps(a))
    assert scores(a, xs[400:]) == scores(b, xs[400:])


@pytest.mark.parametrize("kind", ["generic", "gas", "hst"])
def test_clone_and_seed_are_deterministic(kind: str) -> None:
    xs = stream(500)
    a = make_detector(kind, seed=9)
    first = scores(a, xs)
    assert scores(a.clone(), xs) == first  # a clone starts afresh with the same parameters
    assert scores(make_detector(kind, seed=9), xs) == first


def test_aware_datetime_and_epoch_ms_score_alike() -> None:
    a, b = make_detector(), make_detector()
    for x in stream(300):
        dt = {**x, "ts": datetime.fromtimestamp(x["ts"] / 1000, UTC)}
        assert a.score_one(x) == b.score_one(dt)
        a.learn_one(x)
        b.learn_one(dt)
    with pytest.raises(ValueError, match="naive"):
        a.score_one({"ts": datetime(2026, 11, 21, 7), "value": 1.0})  # noqa: DTZ001 - the invalid input


@pytest.mark.parametrize(("design", "limit3", "limit1"), [("robust", 20_000, 5_000), ("parametric", 2_500, 1_200)])
def test_expected_interval_and_model_size(design: str, limit3: int, limit1: int) -> None:
    d = make_detector("air_quality", design=design)
    for i in range(3000):
        d.learn_one({"ts": T0 + 60_000 * i, "pm25_ugm3": 30.0 + i % 7, "pm10_ugm3": 50.0 + i % 5, "no2_ugm3": 30.0})
    assert d.expected_interval_s == pytest.approx(60.0)
    assert len(pickle.dumps(d, protocol=5)) < limit3  # three metrics; 10,000 sensors < 200 MB (robust)
    u = make_detector(design)
    scores(u, stream(3000))
    assert len(pickle.dumps(u, protocol=5)) < limit1  # univariate (robust: with a 288-bucket daily profile)


def test_kinds_get_their_design_and_unknown_designs_are_refused() -> None:
    assert type(make_detector()).__name__ == type(make_detector("no-such-kind")).__name__ == "SensorDetector"
    assert {type(make_detector(k)).__name__ for k in ("gas", "billboard_tilt", "site_dust")} == {"ParametricDetector"}
    assert make_detector("gas").horizon == 40320.0 and make_detector("gas", horizon=10.0).horizon == 10.0
    with pytest.raises(ValueError, match="unknown detector design"):
        make_detector("gas", design="magic")
