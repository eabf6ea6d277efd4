"""``eval bikes`` and ``eval sensors`` score against a simulator's ground truth: given a recording without one (an
imported real feed) or no recording at all, they say so as a usage error instead of a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from replay.recording import RecordingWriter


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """A recording as ``citystream import`` writes it: feeds and a manifest, no truth, no geography."""
    out = tmp_path / "imported"
    with RecordingWriter(out, source="test") as w:
        w.add("bike_gps", "MT-1", 1_608_505_500_000, '{"bike_id": "MT-1"}')
    return out


@pytest.mark.parametrize(("args", "missing"), [
    (["eval", "bikes"], "ground_truth.jsonl.gz or geography.geojson"),
    (["eval", "sensors", "--recording"], "ground_truth.jsonl.gz"),
])
def test_a_recording_without_truth_is_a_usage_error(imported: Path, args: list[str], missing: str) -> None:
    from citystream.cli import app

    result = CliRunner().invoke(app, [*args, str(imported)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output  # click's usage error
    text = " ".join(result.output.replace("│", " ").split())
    assert f"{imported} has no {missing}: scoring needs a simulator recording" in text, text
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exception
    result = CliRunner().invoke(app, [*args, str(imported / "nowhere")], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "recording directory not found" in result.output, result.output
