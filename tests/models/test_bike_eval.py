"""Acceptance 1: no_parking and outside_fence against a seeded simulation's ground truth, and the scoring rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from citystream.bikes_eval import evaluate_recording, score_violations
from citystream.config import Settings
from models.bikes.events import opened
from replay.simulate import simulate
from streams.agents.bikes_geo import load_bike_setup


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bike-eval") / "sim"
    simulate(out, hours=1.5, bikes=300, sensors=0, seed=1, incidents_per_hour=0)
    return out


def test_precision_recall_and_opened_time_on_a_seeded_simulation(simulated: Path) -> None:
    setup = load_bike_setup(Settings(geography=simulated / "geography.geojson"))
    scores, facts = evaluate_recording(simulated, setup.config, setup.index, partitions=4)
    for kind in ("no_parking", "outside_fence"):
        s = scores[kind]
        assert s.expected >= 10, (kind, s)  # enough cases to mean something
        assert s.precision >= 0.99 and s.recall >= 0.99, (kind, s)
        assert s.error_max_s * 1000 <= facts["interval_ms"], (kind, s.errors_ms)


TRUTH = [
    {"truth": "bike_violation", "kind": "no_parking", "bike_id": "a", "opened_ts": 1_000_000, "closed_ts": 2_000_000},
    {"truth": "bike_violation", "kind": "no_parking", "bike_id": "b", "opened_ts": 1_000_000, "closed_ts": 1_100_000},
    {"truth": "bike_violation", "kind": "no_parking", "bike_id": "c", "opened_ts": 1_000_000, "closed_ts": None},
    {"truth": "bike_violation", "kind": "no_parking", "bike_id": "late", "opened_ts": 9_000_000, "closed_ts": None},
    {"truth": "gps_fault", "fault": "jump", "bike_id": "a", "ts": 5},
]


def test_scoring_matches_by_kind_bike_and_time_and_ignores_what_is_undecidable() -> None:
    found = [
        opened("no_parking", "a", 1_320_000, 1_020_000),  # 20 s after the true lock: matched
        opened("no_parking", "b", 1_400_000, 1_000_000),  # a short one (under the grace) that was reported: right
        opened("outside_fence", "c", 1_300_000, 1_000_000),  # the wrong kind: a miss for c, not scored here
        opened("no_parking", "x", 1_300_000, 1_000_000),  # no such truth: a false positive
        opened("no_parking", "late", 9_300_000, 9_000_000),  # after the cutoff: not scored
    ]
    s = score_violations(found, TRUTH, cutoff_ts=5_000_000, end_ts=10_000_000, grace_ms=300_000,
                         interval_ms=30_000, kinds=("no_parking",))["no_parking"]
    assert (s.detected, s.matched, s.expected, s.found) == (3, 2, 2, 1)  # b lasted 100 s: not expected
    assert s.errors_ms == (0, 20_000) and s.precision == pytest.approx(2 / 3) and s.recall == 0.5
