"""``evaluate_on_truth`` on a tiny synthetic stream made here, with a scripted detector (exact bookkeeping) and
with the default detector; the synthetic benchmark generator."""

from __future__ import annotations

import math
import random

import pytest

from citystream.evaluation.synthetic import TYPES, synthetic_streams
from citystream.evaluation.truth import evaluate_on_truth

T0 = 1_795_190_400_000
MIN = 60_000


def tiny() -> tuple[list[dict], list[dict]]:
    """Two one-minute sensors over two days; a spike, a level shift and a dropout on day two."""
    rng = random.Random(5)
    readings, truth = [], []
    for sid in ("A", "B"):
        for i in range(2 * 1440):
            if sid == "B" and 2000 <= i < 2040:
                continue  # dropout
            v = 10 + math.sin(2 * math.pi * i / 1440) + rng.gauss(0, 0.2)
            v += 4.0 if sid == "A" and i == 1800 else 0.0
            v += 3.0 if sid == "A" and 2200 <= i < 2300 else 0.0
            readings.append({"sensor_id": sid, "kind": "generic", "ts": T0 + MIN * i, "metrics": {"value": v}})
    truth = [{"sensor_id": "A", "type": "spike", "start_ts": T0 + MIN * 1800, "end_ts": T0 + MIN * 1800},
             {"sensor_id": "A", "type": "level_shift", "start_ts": T0 + MIN * 2200, "end_ts": T0 + MIN * 2299},
             {"sensor_id": "B", "type": "dropout", "start_ts": T0 + MIN * 2000, "end_ts": T0 + MIN * 2039 + 30_000}]
    readings.sort(key=lambda r: (r["ts"], r["sensor_id"]))
    return readings, truth


class Scripted:
    """Alarms exactly at the given times."""

    def __init__(self, alarms: set[int]) -> None:
        self.alarms = alarms

    def score_one(self, x: dict) -> float:
        return 1.0 if x["ts"] in self.alarms else 0.0

    def learn_one(self, x: dict) -> None:
        pass


def test_bookkeeping_with_a_scripted_detector() -> None:
    readings, truth = tiny()
    alarms = {"A": {T0 + MIN * 1800, T0 + MIN * 2203, T0 + MIN * 2204, T0 + MIN * 500},  # 500: a false alarm
              "B": {T0 + MIN * 2040, T0 + MIN * 100, T0 + MIN * 101}}  # 100-101: one false alarm episode
    made = iter([alarms["A"], alarms["B"]])  # detectors are made in the order sensors first report: A, B
    r = evaluate_on_truth(readings, truth, lambda kind: Scripted(next(made)))
    assert {k: (v["found"], v["total"]) for k, v in r["types"].items()} == {
        "dropout": (1, 1), "level_shift": (1, 1), "spike": (1, 1)}
    assert r["types"]["spike"]["median_delay_s"] == 0.0 and r["types"]["level_shift"]["median_delay_s"] == 180.0
    assert r["types"]["dropout"]["median_delay_s"] == pytest.approx(30.0)  # from the dropout's end
    assert r["false_alarms"] == 2 and r["sensors"] == 2 and r["sensor_days"] == pytest.approx(4.0, abs=0.01)
    assert r["false_alarms_per_sensor_day"] == pytest.approx(0.5, abs=0.01)


def test_default_detector_on_the_tiny_stream() -> None:
    readings, truth = tiny()
    r = evaluate_on_truth(readings, truth)
    assert all(v["recall"] == 1.0 for v in r["types"].values()), r["types"]
    assert r["types"]["level_shift"]["median_delay_s"] <= 180
    assert r["false_alarms_per_sensor_day"] <= 0.5


def test_synthetic_streams_are_deterministic_and_cover_every_type() -> None:
    a = synthetic_streams(sensors=5, days=4, seed=3)
    assert a == synthetic_streams(sensors=5, days=4, seed=3)
    readings, truth = a
    assert {t["type"] for t in truth} == set(TYPES)
    assert all(r1["ts"] <= r2["ts"] for r1, r2 in zip(readings, readings[1:], strict=False))
