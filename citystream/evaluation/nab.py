"""NAB scoring (Numenta Anomaly Benchmark, standard profile) and a runner over NAB-style CSV corpora.

A detection is a row whose score is at least the threshold, outside the probationary period (the first
15 % of the file, at most 750 rows). The first detection inside a labelled window earns
``A_tp * sigma(y)`` with ``y`` its relative position (-1 at the window start, 0 at its end) and
``sigma(y) = 2 / (1 + exp(5 y)) - 1``; a window without detection costs ``A_fn``; each detection outside
windows costs ``|A_fp| * sigma(y)`` (negative) with ``y`` its distance past the previous window end in
window lengths, or ``A_fp`` when no window came before. The corpus score is normalised:
``100 * (raw - null) / (perfect - null)`` with the null detector (no detection) and the perfect one.
"""

from __future__ import annotations

__all__ = ["STANDARD", "scaled_sigmoid", "score_file", "normalised", "load_corpus", "run_detector"]

import csv
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STANDARD = {"tp": 1.0, "fp": -0.11, "fn": -1.0}


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid of the relative position ``y``.

    Example
    -------
    >>> round(scaled_sigmoid(-1.0), 4), scaled_sigmoid(0.0), scaled_sigmoid(4.0)
    (0.9866, 0.0, -1.0)
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def score_file(times: list[int], scores: list[float], windows: list[tuple[int, int]], threshold: float,
               profile: dict[str, float] = STANDARD) -> tuple[float, int, int, int]:
    """``(raw score, true positives, false positives, missed windows)`` of one file.

    Example
    -------
    >>> t = list(range(100))
    >>> s = [0.0] * 100; s[60] = 1.0
    >>> raw, tp, fp, fn = score_file(t, s, [(50, 69)], 0.9)
    >>> tp, fp, fn, round(raw, 3)
    (1, 0, 0, 0.848)
    """
    probation = min(math.floor(0.15 * len(times)), 750)
    idx = {t: i for i, t in enumerate(times)}
    bounds = [(idx[a], idx[b]) for a, b in windows]
    raw, tp, fp = 0.0, 0, 0
    hit = [False] * len(bounds)
    for i, s in enumerate(scores):
        if i < probation or s < threshold:
            continue
        inside = next((w for w, (a, b) in enumerate(bounds) if a <= i <= b), None)
        if inside is not None:
            if not hit[inside]:
                a, b = bounds[inside]
                hit[inside] = True
                raw += profile["tp"] * scaled_sigmoid(-(b - i + 1) / (b - a + 1))
                tp += 1
            continue
        before = [(a, b) for a, b in bounds if b < i]
        if before:
            a, b = before[-1]
            raw += -profile["fp"] * scaled_sigmoid((i - b) / (b - a + 1))
        else:
            raw += profile["fp"]
        fp += 1
    fn = hit.count(False)
    return raw + profile["fn"] * fn, tp, fp, fn


def normalised(raw: float, n_windows: int, perfect: float, profile: dict[str, float] = STANDARD) -> float:
    """Score normalised against the null (no detection) and perfect detectors, 0..100."""
    null = profile["fn"] * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def load_corpus(root: Path) -> list[tuple[str, list[int], list[float], list[tuple[int, int]]]]:
    """``(name, times ms, values, windows)`` of every ``data/*/*.csv`` with ``combined_windows.json``."""
    labels = json.loads((root / "combined_windows.json").read_text())
    out = []
    for name in sorted(labels):
        with (root / "data" / name).open() as fh:
            rows = list(csv.DictReader(fh))
        times = [_ms(r["timestamp"]) for r in rows]
        windows = [(_ms(a.split(".")[0]), _ms(b.split(".")[0])) for a, b in labels[name]]
        out.append((name, times, [float(r["value"]) for r in rows], windows))
    return out


def run_detector(corpus: list[tuple[str, list[int], list[float], list[tuple[int, int]]]],
                 make: Callable[[], Any], thresholds: tuple[float, ...] = (0.9,)) -> dict[float, dict[str, float]]:
    """Score every file with a fresh detector from ``make``; NAB standard score per threshold."""
    scored = []
    for _name, times, values, windows in corpus:
        det = make()
        s = []
        for t, v in zip(times, values, strict=True):
            x = {"ts": t, "value": v}
            s.append(det.score_one(x))
            det.learn_one(x)
        scored.append((times, s, windows))
    n_windows = sum(len(w) for _, _, w in scored)
    perfect = n_windows * scaled_sigmoid(-1.0)
    out = {}
    for th in thresholds:
        parts = [score_file(t, s, w, th) for t, s, w in scored]
        raw = sum(p[0] for p in parts)
        out[th] = {"score": normalised(raw, n_windows, perfect), "tp": sum(p[1] for p in parts),
                   "fp": sum(p[2] for p in parts), "fn": sum(p[3] for p in parts), "windows": n_windows}
    return out
