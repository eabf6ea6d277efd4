"""SKAB (Skoltech Anomaly Benchmark): a water-circulation rig at 1 Hz, 34 labelled runs of 8 sensors.

Each run (``valve1/*.csv``, ``valve2/*.csv``, ``other/*.csv``; ``;``-separated) starts normal and holds one
anomaly segment (valve closed, leak, rotor imbalance, cavitation, ...). Every run is streamed through a
fresh multivariate detector (all 8 columns in one ``x``); an alarm is a row with score ≥ threshold.

Figures, per run and summed over runs:

* point-wise precision, recall and F1 against the ``anomaly`` column (SKAB's leaderboard metric; it rewards
  a detector that stays in alarm for the whole segment, which an adaptive online detector does not);
* the segment found (an alarm inside it) and the detection delay in seconds from its start;
* false alarm episodes: runs of consecutive alarm rows that start before the segment (in normal operation),
  per hour of normal operation.
"""

from __future__ import annotations

__all__ = ["SkabRun", "load_run", "run_paths", "score_run", "evaluate_skab", "main"]

import csv
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SKIP = {"datetime", "anomaly", "changepoint"}


@dataclass(frozen=True)
class SkabRun:
    """One run: ``times`` (epoch ms, the rig's local clock read as UTC), ``rows`` of metrics, labels."""

    name: str
    times: list[int]
    rows: list[dict[str, float]]
    anomaly: list[int]
    changepoint: list[int]


def load_run(path: Path, root: Path | None = None) -> SkabRun:
    """Read one labelled SKAB run."""
    with path.open() as fh:
        recs = list(csv.DictReader(fh, delimiter=";"))
    cols = [c for c in recs[0] if c not in _SKIP]
    return SkabRun(
        str(path.relative_to(root)) if root else path.name,
        [int(datetime.fromisoformat(r["datetime"]).replace(tzinfo=UTC).timestamp() * 1000) for r in recs],
        [{c: float(r[c]) for c in cols} for r in recs],
        [int(float(r["anomaly"])) for r in recs],
        [int(float(r["changepoint"])) for r in recs],
    )


def run_paths(root: Path) -> list[Path]:
    """The labelled runs under ``root`` (``anomaly-free`` has no labels and is left out)."""
    return sorted(p for p in root.glob("*/*.csv") if p.parent.name != "anomaly-free")


def score_run(run: SkabRun, make: Callable[[], Any]) -> list[float]:
    """Scores of every row of ``run`` through a fresh detector (score before learn)."""
    det, out = make(), []
    for t, row in zip(run.times, run.rows, strict=True):
        x = {"ts": t, **row}
        out.append(det.score_one(x))
        det.learn_one(x)
    return out


def _figures(run: SkabRun, scores: Sequence[float], threshold: float) -> dict[str, Any]:
    alarm = [s >= threshold for s in scores]
    tp = sum(a and y for a, y in zip(alarm, run.anomaly, strict=True))
    fp = sum(a and not y for a, y in zip(alarm, run.anomaly, strict=True))
    fn = sum(y and not a for a, y in zip(alarm, run.anomaly, strict=True))
    start = run.anomaly.index(1) if 1 in run.anomaly else len(run.anomaly)
    first = next((i for i in range(start, len(alarm)) if alarm[i] and run.anomaly[i]), None)
    episodes = sum(1 for i in range(start) if alarm[i] and (i == 0 or not alarm[i - 1]))
    return {"tp": tp, "fp": fp, "fn": fn, "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
            "found": first is not None, "delay_s": None if first is None else (run.times[first] - run.times[start]) / 1000,
            "false_episodes": episodes, "normal_s": (run.times[start - 1] - run.times[0]) / 1000 if start > 1 else 0.0}


def evaluate_skab(root: Path, make: Callable[[], Any], threshold: float = 0.9,
                  paths: Iterable[Path] | None = None) -> dict[str, Any]:
    """SKAB figures of ``make``'s detectors: ``{"runs": {name: {...}}, "total": {...}}``.

    ``total`` holds point-wise ``precision``, ``recall``, ``f1`` (counts summed over runs), ``mean_f1``
    over runs, ``found``/``segments``, ``median_delay_s``, ``false_per_hour`` (alarm episodes in normal
    operation per hour of it) and ``all_alarm_f1`` (the F1 of a detector that always alarms, for scale).
    """
    runs = {}
    ones = rows = 0
    for p in (paths if paths is not None else run_paths(root)):
        run = load_run(p, root)
        runs[run.name] = _figures(run, score_run(run, make), threshold)
        ones, rows = ones + sum(run.anomaly), rows + len(run.anomaly)
    tp, fp, fn = (sum(r[k] for r in runs.values()) for k in ("tp", "fp", "fn"))
    delays = [r["delay_s"] for r in runs.values() if r["delay_s"] is not None]
    normal_h = sum(r["normal_s"] for r in runs.values()) / 3600
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    total = {"threshold": threshold, "precision": prec, "recall": rec,
             "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
             "mean_f1": statistics.fmean(r["f1"] for r in runs.values()) if runs else 0.0,
             "found": sum(r["found"] for r in runs.values()), "segments": len(runs),
             "median_delay_s": statistics.median(delays) if delays else None,
             "false_per_hour": sum(r["false_episodes"] for r in runs.values()) / normal_h if normal_h else 0.0,
             "all_alarm_f1": 2 * ones / (ones + rows) if rows else 0.0}
    return {"runs": runs, "total": total}


def main(root: Path, detectors: dict[str, Callable[[], Any]], threshold: float = 0.9) -> dict[str, Any]:
    """Print a table of SKAB figures for each named detector factory; return the figures."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"SKAB ({root}), threshold {threshold:g}", title_justify="left")
    for col in ("detector", "precision", "recall", "F1", "mean run F1", "segments found", "median delay s",
                "false alarms / h"):
        table.add_column(col, justify="right" if col != "detector" else "left")
    results = {}
    for name, make in detectors.items():
        results[name] = evaluate_skab(root, make, threshold)
        t = results[name]["total"]
        table.add_row(name, f"{t['precision']:.3f}", f"{t['recall']:.3f}", f"{t['f1']:.3f}", f"{t['mean_f1']:.3f}",
                      f"{t['found']}/{t['segments']}", "-" if t["median_delay_s"] is None else f"{t['median_delay_s']:.0f}",
                      f"{t['false_per_hour']:.2f}")
    Console().print(table)
    if results:
        console_all = next(iter(results.values()))["total"]["all_alarm_f1"]
        Console().print(f"(a detector that always alarms: F1 {console_all:.3f})")
    return results
