"""Acceptance 1: on the simulator's ground truth, every deadline breach is found with its exact time, and no
false one (``citystream eval incidents``, which runs the agents' own per-partition code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citystream.config import Settings
from citystream.incidents_eval import run_recording, score_breaches, score_links, truth_of
from replay.recording import Recording
from replay.simulate import simulate
from streams.agents.incidents_setup import incident_setup


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incidents") / "sim"
    simulate(out, hours=18, bikes=0, sensors=0, seed=3, incidents_per_hour=40)
    return out


@pytest.mark.parametrize("partitions", [1, 12])
def test_every_breach_exact_and_no_false_one(recording: Path, partitions: int) -> None:
    _, truth = truth_of(recording)
    run = run_recording(Recording.open(recording), incident_setup(Settings(partitions=partitions)))
    score = score_breaches(truth, run.breaches())
    assert score.truth > 40 and {e["step"] for e in truth if e["truth"] == "deadline_breach"} >= {"dispatch", "handle"}
    assert (score.missed, score.false) == ([], [])
    assert run.rejects == []
    links = score_links(truth, run.links())
    assert links.truth > 40 and links.perfect


def test_a_wrong_time_limit_is_caught(recording: Path) -> None:
    _, truth = truth_of(recording)
    settings = Settings(incident_deadlines_s={"dispatch": 601})  # one second more than the simulator's limit
    score = score_breaches(truth, run_recording(Recording.open(recording), incident_setup(settings)).breaches())
    assert score.missed and score.false  # the breach times are off by 1 s: neither side matches


def test_command(recording: Path) -> None:
    from citystream.cli import app

    result = CliRunner().invoke(app, ["eval", "incidents", str(recording)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    n = len([e for e in truth_of(recording)[1] if e["truth"] == "deadline_breach"])
    assert re.search(rf"exact matches .*│\s+{n:,}", result.output)
    assert re.search(r"false breaches\s+│\s+0", result.output)
