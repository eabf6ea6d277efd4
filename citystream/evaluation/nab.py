"""NAB scoring (Numenta Anomaly Benchmark, standard profile) and a runner over NAB-style corpora.

The rules follow NAB's ``sweeper.py``/``scorer.py``: rows in the probationary period (the first 15 % of a
file, at most 750 rows) are ignored. A detection (score ≥ threshold) inside a labelled window earns
``A_tp * S(y) / S(-1)`` with ``y = -(right - i + 1) / width`` its relative position and
``S(y) = 2 / (1 + exp(5 y)) - 1``; only the earliest detection of a window counts, and a window without
detection costs ``A_fn``. Every detection outside the windows costs ``|A_fp| * S(y)`` (negative) with ``y``
its distance past the previous window's end in window widths, or ``A_fp`` when no window came before. The
corpus score is normalised ``100 * (raw - null) / (perfect - null)``: the null detector finds nothing
(``null = A_fn * windows``), the perfect one finds every window at its start (``perfect = A_tp * windows``).

Two figures are reported: the score at a fixed threshold (what the pipeline uses), and NAB's
"optimized-threshold" score: the one threshold for the whole corpus that maximises it, found by an exact
sweep over all scores (NAB's ``optimizer``), which is optimistic by construction.
"""

from __future__ import annotations

__all__ = ["STANDARD", "NabFile", "scaled_sigmoid", "score_file", "sweep_threshold", "normalised",
           "windows_path", "load_corpus", "score_corpus", "run_detector", "evaluate_nab", "main"]

import bisect
import csv
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STANDARD = {"tp": 1.0, "fp": -0.11, "fn": -1.0}
_MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0  # S(-1), the weight of a detection at a window's start


@dataclass(frozen=True)
class NabFile:
    """One data file: ``times`` (epoch ms), ``values``, label ``windows`` as (start ms, end ms)."""

    name: str
    times: list[int]
    values: list[float]
    windows: list[tuple[int, int]]


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


def _row_weights(times: Sequence[int], windows: Sequence[tuple[int, int]],
                 profile: dict[str, float]) -> tuple[list[float], list[int]]:
    """Per row: the weight a detection there would earn, and its window (-1 outside, -2 probationary)."""
    n = len(times)
    probation = min(math.floor(0.15 * n), 0.15 * 5000)
    # A window holds the rows with start <= time <= end (NAB's scorer), whether or not its bounds are row times.
    bounds = sorted((a, b) for a, b in ((bisect.bisect_left(times, s), bisect.bisect_right(times, e) - 1)
                                        for s, e in windows) if a <= b)
    weight, window = [0.0] * n, [-1] * n
    prev: tuple[int, int] | None = None
    w = 0
    for i in range(n):
        while w < len(bounds) and bounds[w][1] < i:
            prev, w = bounds[w], w + 1
        if w < len(bounds) and bounds[w][0] <= i:
            a, b = bounds[w]
            weight[i] = profile["tp"] * scaled_sigmoid(-(b - i + 1) / (b - a + 1)) / _MAX_TP
            window[i] = w
        elif prev is None:
            weight[i] = profile["fp"]
        else:
            a, b = prev
            weight[i] = -profile["fp"] * scaled_sigmoid((i - b) / (b - a))
        if i < probation:
            window[i] = -2
    return weight, window


def score_file(times: Sequence[int], scores: Sequence[float], windows: Sequence[tuple[int, int]],
               threshold: float, profile: dict[str, float] = STANDARD) -> tuple[float, int, int, int]:
    """``(raw score, windows detected, false-positive detections, windows missed)`` of one file.

    Example
    -------
    >>> t = list(range(100))
    >>> s = [0.0] * 100; s[60] = 1.0
    >>> raw, tp, fp, fn = score_file(t, s, [(50, 69)], 0.9)
    >>> tp, fp, fn, round(raw, 3)
    (1, 0, 0, 0.86)
    """
    weight, window = _row_weights(times, windows, profile)
    best: dict[int, float] = {w: profile["fn"] for w in set(window) if w >= 0}
    raw_fp, fp = 0.0, 0
    for i, s in enumerate(scores):
        if s < threshold or window[i] == -2:
            continue
        if window[i] >= 0:
            best[window[i]] = max(best[window[i]], weight[i])
        else:
            raw_fp += weight[i]
            fp += 1
    tp = sum(v != profile["fn"] for v in best.values())
    return raw_fp + sum(best.values()), tp, fp, len(best) - tp


def sweep_threshold(scored: Iterable[tuple[Sequence[int], Sequence[float], Sequence[tuple[int, int]]]],
                    profile: dict[str, float] = STANDARD) -> tuple[float, float]:
    """NAB's optimized threshold: ``(threshold, raw corpus score)`` maximising the summed raw score.

    Every distinct score is a candidate; lowering the threshold past it adds its detections. Exact.

    Example
    -------
    >>> t = list(range(100))
    >>> s = [0.5] * 100; s[60] = 0.8; s[90] = 0.9
    >>> sweep_threshold([(t, s, [(50, 69)])])
    (0.8, ...)
    """
    rows: list[tuple[float, int, int, float]] = []  # (score, file, window, weight)
    fn_total = 0.0
    best_of: dict[tuple[int, int], float] = {}
    for f, (times, scores, windows) in enumerate(scored):
        weight, window = _row_weights(times, windows, profile)
        for w in set(window):
            if w >= 0:
                best_of[(f, w)] = profile["fn"]
                fn_total += profile["fn"]
        rows += [(s, f, window[i], weight[i]) for i, s in enumerate(scores) if window[i] != -2]
    rows.sort(key=lambda r: -r[0])
    total = fn_total
    best_t, best_raw = math.inf, total
    for k, (s, f, w, wt) in enumerate(rows):
        if w >= 0:
            old = best_of[(f, w)]
            if wt > old:
                best_of[(f, w)] = wt
                total += wt - old
        else:
            total += wt
        if (k + 1 == len(rows) or rows[k + 1][0] != s) and total > best_raw:
            best_t, best_raw = s, total
    return best_t, best_raw


def normalised(raw: float, n_windows: int, profile: dict[str, float] = STANDARD) -> float:
    """Score normalised against the null (no detection) and perfect detectors: 0 and 100.

    Example
    -------
    >>> normalised(-6.0, 6), normalised(6.0, 6), normalised(0.0, 6)
    (0.0, 100.0, 50.0)
    """
    null, perfect = profile["fn"] * n_windows, profile["tp"] * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def windows_path(root: Path) -> Path | None:
    """The label windows of a NAB-style corpus at ``root``: ``combined_windows.json`` beside ``data/`` (as in
    ``../shared``), or under ``labels/`` (a checkout of the NAB repository); None when neither exists."""
    for path in (root / "combined_windows.json", root / "labels" / "combined_windows.json"):
        if path.is_file():
            return path
    return None


def load_corpus(root: Path, names: Iterable[str] | None = None, skipped: list[str] | None = None) -> list[NabFile]:
    """The files of the corpus's ``combined_windows.json`` under ``root/data`` (or only ``names``), times as UTC.

    Without ``names``, a labelled file missing under ``data/`` is left out and its name appended to ``skipped``
    (a partial corpus still scores); a name asked for explicitly must exist."""
    path = windows_path(root)
    if path is None:
        raise FileNotFoundError(f"no combined_windows.json under {root} or {root / 'labels'}")
    labels = json.loads(path.read_text())
    if names is None:
        names = [n for n in labels if (root / "data" / n).is_file()]
        if skipped is not None:
            skipped += sorted(n for n in labels if n not in names)
    out = []
    for name in sorted(names):
        with (root / "data" / name).open() as fh:
            rows = list(csv.DictReader(fh))
        out.append(NabFile(name, [_ms(r["timestamp"]) for r in rows], [float(r["value"]) for r in rows],
                           [(_ms(a), _ms(b)) for a, b in labels[name]]))
    return out


def score_corpus(corpus: Sequence[NabFile], make: Callable[[], Any]) -> list[list[float]]:
    """Scores of every row of every file, each file streamed through a fresh detector from ``make``."""
    out = []
    for f in corpus:
        det, scores = make(), []
        for t, v in zip(f.times, f.values, strict=True):
            x = {"ts": t, "value": v}
            scores.append(det.score_one(x))
            det.learn_one(x)
        out.append(scores)
    return out


def run_detector(corpus: Sequence[NabFile], make: Callable[[], Any],
                 thresholds: tuple[float, ...] = (0.9,)) -> dict[float, dict[str, float]]:
    """NAB standard score per fixed threshold: ``{threshold: {score, tp, fp, fn, windows}}``."""
    return _at_thresholds(corpus, score_corpus(corpus, make), thresholds)


def _at_thresholds(corpus: Sequence[NabFile], scores: Sequence[Sequence[float]],
                   thresholds: Iterable[float]) -> dict[float, dict[str, float]]:
    out = {}
    for th in thresholds:
        parts = [score_file(f.times, s, f.windows, th) for f, s in zip(corpus, scores, strict=True)]
        n_windows = sum(p[1] + p[3] for p in parts)
        raw = sum(p[0] for p in parts)
        out[th] = {"score": normalised(raw, n_windows), "raw": raw, "tp": sum(p[1] for p in parts),
                   "fp": sum(p[2] for p in parts), "fn": sum(p[3] for p in parts), "windows": n_windows}
    return out


def evaluate_nab(root: Path, make: Callable[[], Any], threshold: float = 0.9,
                 names: Iterable[str] | None = None) -> dict[str, Any]:
    """NAB standard-profile figures of ``make``'s detectors on the corpus at ``root``.

    Returns ``{"fixed": {...}, "optimized": {...}, "files": {name: {...}}}``: ``fixed`` at ``threshold``,
    ``optimized`` at NAB's corpus-optimal threshold (each with ``threshold, score, raw, tp, fp, fn,
    windows``; ``tp``/``fn`` count windows, ``fp`` false-positive detections), and per file the fixed one.
    """
    corpus = load_corpus(root, names)
    scores = score_corpus(corpus, make)
    fixed = _at_thresholds(corpus, scores, (threshold,))[threshold]
    best_t, _ = sweep_threshold([(f.times, s, f.windows) for f, s in zip(corpus, scores, strict=True)])
    opt = _at_thresholds(corpus, scores, (best_t,))[best_t] if math.isfinite(best_t) else {
        **fixed, "score": 0.0, "tp": 0, "fp": 0, "fn": fixed["windows"]}
    files = {f.name: _at_thresholds([f], [s], (threshold,))[threshold] for f, s in zip(corpus, scores, strict=True)}
    return {"fixed": {"threshold": threshold, **fixed}, "optimized": {"threshold": best_t, **opt}, "files": files}


def main(root: Path, detectors: dict[str, Callable[[], Any]], threshold: float = 0.9) -> dict[str, Any]:
    """Print a table of NAB figures for each named detector factory; return the figures."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"NAB {root.name}, standard profile", title_justify="left")
    for col in ("detector", f"score @ {threshold:g}", "TP/FN windows", "FP", "optimized score", "@ threshold"):
        table.add_column(col, justify="right" if col != "detector" else "left")
    results = {}
    for name, make in detectors.items():
        r = results[name] = evaluate_nab(root, make, threshold)
        fx, op = r["fixed"], r["optimized"]
        table.add_row(name, f"{fx['score']:.1f}", f"{fx['tp']}/{fx['fn']}", str(fx["fp"]), f"{op['score']:.1f}",
                      f"{op['threshold']:.4g}")
    Console().print(table)
    return results
