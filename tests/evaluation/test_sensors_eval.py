"""``evaluate_recording`` (``citystream eval sensors``) on a small seeded simulation: every threshold breach
is alerted on its first breaching reading, injected anomalies after the learning period are found, and the
learning period is left out of the scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from citystream.evaluation.sensors import evaluate_recording
from replay.simulate import simulate


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sensors-eval") / "sim"
    simulate(out, hours=30, bikes=0, sensors=30, seed=5, incidents_per_hour=0.0)
    return out


def test_breaches_on_first_reading_and_anomalies_found_after_learning(recording: Path) -> None:
    ev = evaluate_recording(recording, warmup_h=6)
    rows = {typ: (found, total) for typ, found, total, _, _ in ev.rows()}
    assert rows["threshold_breach"][1] > 0 and rows["threshold_breach"][0] == rows["threshold_breach"][1]
    assert ev.first_reading and all(ev.first_reading)
    anomalies = [rows[t] for t in rows if t != "threshold_breach"]
    found, total = sum(f for f, _ in anomalies), sum(t for _, t in anomalies)
    assert total >= 5 and found / total >= 0.8, rows
    assert ev.false_alarms_per_sensor_day < 2.0, ev.false_by
    assert ev.sensor_days == pytest.approx(30 * 24 / 24, rel=0.01)  # 30 sensors x (30 h - 6 h)


def test_the_learning_period_is_not_scored(recording: Path) -> None:
    cold, warm = evaluate_recording(recording), evaluate_recording(recording, warmup_h=12)
    n = lambda ev: sum(total for typ, _, total, _, _ in ev.rows() if typ != "threshold_breach")  # noqa: E731
    assert n(warm) < n(cold)
    assert [r for r in warm.rows() if r[0] == "threshold_breach"] == [r for r in cold.rows() if r[0] == "threshold_breach"]
    assert warm.sensor_days == pytest.approx(cold.sensor_days * 18 / 30, rel=0.01)
