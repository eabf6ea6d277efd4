"""Score bike supervision against a simulated recording's ground truth (``replay/simulate/truth.py``).

The recording's GPS feed is decoded like ``validate_fixes`` does, split per partition like the pipeline,
and run through one :class:`~models.bikes.BikeSupervisor` per partition: the agents' own model code,
in-process and fast. The violations it opens are matched to the truth's ``bike_violation`` entries.

Scoring rules:

- Only violations *decidable* within the feed count: those opened (truth or detection) no later than
  ``horizon - grace - confirm_wait``, where ``horizon`` is the event time the detector reached. Later ones
  might still be confirmed by fixes the recording does not hold.
- A detection matches a truth entry of the same kind and bike when its ``opened_ts`` lies between the
  entry's ``opened_ts`` minus one GPS interval and its close (nearest first, one detection per entry).
- Precision: matched detections / detections. Recall: truth entries lasting at least the grace period
  (the ones the rules must report) that a detection matched / such entries.
- Opened-time error: ``|detected opened_ts - true opened_ts|`` of the matched detections.
"""

from __future__ import annotations

__all__ = ["SCORED_KINDS", "KindScore", "read_fix_batches", "supervise", "supervise_partitions", "score_violations",
           "evaluate_recording"]

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.bikes import BikeSupervisor, SupervisionConfig, Violation
from models.bikes.events import Event
from models.bikes.state import UNSEEN
from models.geo import ZoneIndex
from models.gps import FixBatch, decode_gps
from replay.recording import Recording
from replay.simulate.truth import read_truth
from streams.agents.validate_fixes import split_by_partition

SCORED_KINDS = ("no_parking", "outside_fence")


@dataclass(frozen=True)
class KindScore:
    """Detection quality for one violation kind.

    Example
    -------
    >>> s = KindScore("no_parking", detected=100, matched=99, expected=50, found=50, errors_ms=(0, 0, 40_000))
    >>> s.precision, s.recall, s.error_max_s, s.within(30_000)
    (0.99, 1.0, 40.0, 0.6666666666666666)
    """

    kind: str
    detected: int
    matched: int
    expected: int
    found: int
    errors_ms: tuple[int, ...]

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def error_max_s(self) -> float:
        return max(self.errors_ms, default=0) / 1000

    def error_quantile_s(self, q: float) -> float:
        return float(np.quantile(self.errors_ms, q)) / 1000 if self.errors_ms else 0.0

    def within(self, interval_ms: int) -> float:
        """Share of matched detections whose opened time is within ``interval_ms`` of the truth."""
        return sum(e <= interval_ms for e in self.errors_ms) / len(self.errors_ms) if self.errors_ms else 1.0


def read_fix_batches(rec: Recording, batch_fixes: int = 5_000) -> Iterator[FixBatch]:
    """The recording's valid GPS fixes in feed order, in batches of about ``batch_fixes``."""
    parts: list[FixBatch] = []
    size = 0
    for msg in rec.iter_feed("bike_gps"):
        ok, _ = decode_gps(msg.value)
        parts.append(ok)
        size += len(ok)
        if size >= batch_fixes:
            yield FixBatch.concat(parts)
            parts, size = [], 0
    if parts:
        yield FixBatch.concat(parts)


def supervise(batches: Iterable[FixBatch], config: SupervisionConfig, index: ZoneIndex, partitions: int = 1,
              until_ts: int | None = None) -> tuple[list[Event], dict[str, int]]:
    """Run the batches through one supervisor per partition; then advance each to ``until_ts``, by default
    the newest fix of all minus the allowed lateness: where the pipeline's partitions end once every source
    is read to its end (``models/source_clock.py``).

    Returns the events (partition after partition, time order within a partition) and the summed counters.
    """
    by_partition, stats = supervise_partitions(batches, config, index, partitions, until_ts)
    return [e for events in by_partition for e in events], stats


def supervise_partitions(batches: Iterable[FixBatch], config: SupervisionConfig, index: ZoneIndex,
                         partitions: int = 1, until_ts: int | None = None,
                         make: Callable[[int], BikeSupervisor] | None = None,
                         ) -> tuple[list[list[Event]], dict[str, int]]:
    """:func:`supervise` with each partition's events apart (what the pipeline's supervisor of that partition
    emits); ``make``: partition -> its supervisor (default the real one; the workers' factory is
    :func:`models.bikes.whatif.supervisor_factory`)."""
    sups = [make(p) if make else BikeSupervisor(config, index) for p in range(partitions)]
    events: list[list[Event]] = [[] for _ in range(partitions)]
    for batch in batches:
        for p, part in split_by_partition(batch, partitions).items():
            events[p] += sups[p].process(part)
    if until_ts is None and any(sup.max_seen != UNSEEN for sup in sups):
        until_ts = max(sup.max_seen for sup in sups) - config.allowed_lateness_ms
    if until_ts is not None:
        for p, sup in enumerate(sups):
            events[p] += sup.advance_to(until_ts)
    stats: dict[str, int] = defaultdict(int)
    for sup in sups:
        for k, v in sup.stats.items():
            stats[k] += v
    return events, dict(stats)


def score_violations(events: Iterable[Event | Violation], truth: Iterable[dict[str, Any]], cutoff_ts: int,
                     end_ts: int, grace_ms: int, interval_ms: int,
                     kinds: tuple[str, ...] = SCORED_KINDS) -> dict[str, KindScore]:
    """Score the opened violations against truth entries (rules in the module docstring).

    ``cutoff_ts``: only violations opened no later than this count; ``end_ts``: end of the recording
    (an entry still open there lasted until it).
    """
    out = {}
    entries = [e for e in truth if e.get("truth") == "bike_violation"]
    for kind in kinds:
        mine = [e for e in entries if e["kind"] == kind and e["opened_ts"] <= cutoff_ts]
        by_bike: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in mine:
            by_bike[e["bike_id"]].append(e)
        dets = [v for v in events if isinstance(v, Violation) and v.action == "open" and v.kind == kind
                and v.opened_ts <= cutoff_ts]
        pairs = []
        for i, v in enumerate(dets):
            for e in by_bike.get(v.subject_id, ()):
                if e["opened_ts"] - interval_ms <= v.opened_ts <= (e["closed_ts"] or end_ts):
                    pairs.append((abs(v.opened_ts - e["opened_ts"]), i, id(e)))
        used_d: set[int] = set()
        used_e: dict[int, int] = {}
        for err, i, eid in sorted(pairs):
            if i not in used_d and eid not in used_e:
                used_d.add(i)
                used_e[eid] = err
        expected = [e for e in mine if (e["closed_ts"] or end_ts) - e["opened_ts"] >= grace_ms]
        out[kind] = KindScore(kind, len(dets), len(used_d), len(expected),
                              sum(1 for e in expected if id(e) in used_e), tuple(sorted(used_e.values())))
    return out


def evaluate_recording(path: Path, config: SupervisionConfig, index: ZoneIndex, partitions: int = 4,
                       ) -> tuple[dict[str, KindScore], dict[str, Any]]:
    """Replay a simulated recording through the supervisors and score it; also returns run facts
    (fixes, counters, GPS interval, horizon, cutoff)."""
    rec = Recording.open(path)
    head, truth = read_truth(path / str(rec.extra.get("ground_truth", "ground_truth.jsonl.gz")))
    end_ts = int(head["end_ts"])
    events, stats = supervise(read_fix_batches(rec), config, index, partitions, until_ts=end_ts)
    cutoff = end_ts - config.grace_ms - (config.confirm_wait_ms if config.confirm_parking else 0)
    interval = int(head.get("gps_interval_s", 30)) * 1000
    scores = score_violations(events, truth, cutoff, end_ts, config.grace_ms, interval)
    facts = {"fixes": stats.get("fixes", 0), "stats": stats, "interval_ms": interval, "end_ts": end_ts,
             "cutoff_ts": cutoff, "events": len(events)}
    return scores, facts
