"""SKAB harness on two runs (skipped without ``../shared``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citystream.evaluation.skab import evaluate_skab, load_run
from models.anomaly import make_detector

SKAB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "anomaly" / "skab"
pytestmark = pytest.mark.skipif(not SKAB.exists(), reason=f"SKAB not found at {SKAB} (needs ../shared)")


def test_load_run_reads_the_rig_columns_and_labels() -> None:
    run = load_run(SKAB / "valve1" / "0.csv", SKAB)
    assert run.name == "valve1/0.csv" and len(run.rows) == len(run.anomaly) == len(run.times) > 1000
    assert set(run.rows[0]) == {"Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature",
                                "Thermocouple", "Voltage", "Volume Flow RateRMS"}
    assert 0 < sum(run.anomaly) < len(run.anomaly) and run.times[1] - run.times[0] == 1000


def test_multivariate_detector_finds_the_valve_closures() -> None:
    paths = [SKAB / "valve1" / "0.csv", SKAB / "valve2" / "0.csv"]
    r = evaluate_skab(SKAB, make_detector, 0.9, paths)
    total = r["total"]
    assert total["segments"] == 2 and total["found"] == 2
    assert total["precision"] > 0.3 and 0.0 < total["f1"] <= 1.0
    never = evaluate_skab(SKAB, lambda: _Never(), 0.9, paths)["total"]
    assert never["f1"] == 0.0 and never["found"] == 0 and never["false_per_hour"] == 0.0


class _Never:
    def score_one(self, x: dict) -> float:
        return 0.0

    def learn_one(self, x: dict) -> None:
        pass
