"""NAB scoring rules on hand-made files, and the default detector on two NAB artificial files (skipped
without ``../shared``)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from citystream.evaluation.nab import (
    evaluate_nab,
    normalised,
    scaled_sigmoid,
    score_file,
    sweep_threshold,
)
from models.anomaly import make_detector

NAB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "anomaly" / "nab_artificial"
T = list(range(1000))  # probation: the first 150 rows
W = [(500, 599)]


def with_alarms(*rows: int) -> list[float]:
    s = [0.0] * len(T)
    for r in rows:
        s[r] = 1.0
    return s


def test_scaled_sigmoid_and_normalisation() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5) and scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.5) == -1.0
    assert normalised(-2.0, 2) == 0.0 and normalised(2.0, 2) == 100.0


def test_window_start_scores_a_full_true_positive_and_only_the_first_counts() -> None:
    raw, tp, fp, fn = score_file(T, with_alarms(500, 550, 590), W, 0.5)
    assert (tp, fp, fn) == (1, 0, 0) and raw == pytest.approx(1.0)
    late, *_ = score_file(T, with_alarms(599), W, 0.5)
    assert 0.0 < late < 0.1  # at the window's end a detection is worth almost nothing


def test_missed_window_false_positives_and_probation() -> None:
    assert score_file(T, with_alarms(), W, 0.5) == (-1.0, 0, 0, 1)
    raw, tp, fp, fn = score_file(T, with_alarms(100, 300), W, 0.5)  # 100 is in the probationary period
    assert (tp, fp, fn) == (0, 1, 1) and raw == pytest.approx(-1.11)
    after, *_ = score_file(T, with_alarms(500, 605), W, 0.5)  # just after the window: a small penalty
    assert 1.0 - 0.11 < after < 1.0


def test_sweep_finds_the_best_fixed_threshold() -> None:
    rng = random.Random(3)
    files = [(T, [rng.random() for _ in T], W), (T, [rng.random() ** 3 for _ in T], [(200, 260), (700, 760)])]
    best_t, best_raw = sweep_threshold(files)
    brute = max((sum(score_file(t, s, w, th)[0] for t, s, w in files), th)
                for th in {s for _, ss, _ in files for s in ss})
    assert best_raw == pytest.approx(brute[0]) and best_t == brute[1]
    assert all(sum(score_file(t, s, w, th)[0] for t, s, w in files) <= best_raw + 1e-9
               for th in itertools.islice((x / 50 for x in range(51)), 51))


@pytest.mark.skipif(not NAB.exists(), reason=f"NAB artificial corpus not found at {NAB} (needs ../shared)")
def test_default_detector_on_two_nab_files() -> None:
    names = ["artificialWithAnomaly/art_daily_jumpsup.csv", "artificialNoAnomaly/art_daily_no_noise.csv"]
    r = evaluate_nab(NAB, make_detector, 0.9, names)
    assert r["files"][names[0]]["tp"] == 1 and r["files"][names[1]]["fp"] == 0
    assert r["fixed"]["score"] > 50 and r["optimized"]["score"] >= r["fixed"]["score"]


def test_window_bounds_need_not_be_row_times() -> None:
    """NAB's scorer takes the rows with start <= time <= end; bounds between rows (or duplicate times) work."""
    times = [10 * i for i in range(1000)]
    aligned = score_file(times, with_alarms(520), [(5000, 5990)], 0.5)
    between = score_file(times, with_alarms(520), [(4995, 5995)], 0.5)  # same rows: 500..599
    assert aligned == between and aligned[1:] == (1, 0, 0)
    assert score_file(times, with_alarms(520), [(5001, 5009)], 0.5)[1:] == (0, 1, 0)  # no row inside: no window
    dup = [*range(500), 499, *range(500, 999)]  # a repeated timestamp, after the probationary rows
    assert score_file(dup, with_alarms(500), [(499, 499)], 0.5)[1:] == (1, 0, 0)  # both rows of 499 are the window


def test_nab_repository_layout_and_a_partial_corpus(tmp_path: Path) -> None:
    """``labels/combined_windows.json`` (a NAB checkout) is found; labelled files missing under data/ are left
    out and named, so a partial corpus still scores."""
    import json

    from citystream.evaluation.nab import load_corpus, windows_path

    (tmp_path / "data" / "realX").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    rows = "".join(f"2014-04-01 {h:02d}:{m:02d}:00,{float(h * 60 + m)}\n" for h in range(10) for m in range(0, 60, 5))
    (tmp_path / "data" / "realX" / "a.csv").write_text("timestamp,value\n" + rows)
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps({
        "realX/a.csv": [["2014-04-01 05:02:30.000000", "2014-04-01 06:00:00.000000"]],
        "realX/missing.csv": [],
    }))
    assert windows_path(tmp_path) == tmp_path / "labels" / "combined_windows.json"
    skipped: list[str] = []
    corpus = load_corpus(tmp_path, skipped=skipped)
    assert [f.name for f in corpus] == ["realX/a.csv"] and skipped == ["realX/missing.csv"]
    assert len(corpus[0].times) == 120 and corpus[0].windows[0][0] < corpus[0].windows[0][1]
    r = evaluate_nab(tmp_path, make_detector, 0.9)
    assert r["fixed"]["windows"] == 1
    assert windows_path(tmp_path / "data") is None
