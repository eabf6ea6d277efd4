"""Score the incident stream against a simulator's ground truth (``citystream eval incidents``).

:func:`run_recording` pushes a recording's ``incident_events`` through the same per-partition code the
agents run (:class:`~models.incidents.flow.CaseFlow`, then :class:`~models.incidents.linking.ReportLinker`
on the report stream), routed to partitions as Kafka's default partitioner would, and ends with a
heartbeat at the recording's end on every partition, as a live source would send. :func:`score_breaches`
and :func:`score_links` compare what it (or a pipeline, read back from ClickHouse) found with the
truth: a breach counts as detected only with the same case, step, step start and breach time to the
millisecond.
"""

from __future__ import annotations

__all__ = ["EvalRun", "Score", "run_recording", "run_messages", "score_breaches", "score_links", "truth_of"]

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.incidents.flow import Message, Outbox, Reject
from models.incidents.linking import ReportLinker
from replay.recording import Recording
from replay.simulate.truth import read_truth
from streams.agents.incidents_setup import IncidentSetup
from streams.topics import partition_for

#: A detected breach: (case_id, step, step start ms, breach ms).
BreachKey = tuple[str, str, int, int]


@dataclass
class EvalRun:
    """Everything the emulated pipeline produced from a recording."""

    events: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Rows of one kind (``case`` rows: only the newest version of each case)."""
        rows = [r for r in self.rows if r["kind"] == kind]
        if kind == "case":
            latest: dict[str, dict[str, Any]] = {}
            for r in rows:
                if r["case_id"] not in latest or r["version"] >= latest[r["case_id"]]["version"]:
                    latest[r["case_id"]] = r
            rows = list(latest.values())
        return rows

    def breaches(self) -> list[BreachKey]:
        """Detected breaches."""
        return [(r["case_id"], r["step"], r["since_ms"], r["breach_ms"]) for r in self.of_kind("breach")]

    def links(self) -> list[tuple[str, str]]:
        """Detected duplicate links ``(case_id, parent_case_id)``."""
        return [(r["case_id"], r["parent_case_id"]) for r in self.of_kind("duplicate")]


def run_recording(rec: Recording, setup: IncidentSetup, end_ts: int | None = None, batch: int = 500,
                  progress: Callable[[int], None] | None = None) -> EvalRun:  # fmt: skip
    """Run the recording's incident events through per-partition flows and linkers.

    ``end_ts`` (default: the simulator's end, else the last event + 1 ms) is sent as a heartbeat to
    every partition at the end. ``batch`` is how many messages a partition takes at a time; outputs
    do not depend on it.
    """
    if end_ts is None:
        end_ts = int(rec.extra.get("simulator", {}).get("end_ts") or (rec.last_ts or 0) + 1)
    messages = ((m.key, m.value) for m in rec.iter_feed("incident_events"))
    return run_messages(messages, setup, end_ts, batch, progress)


def run_messages(messages: Iterable[tuple[str | None, bytes]], setup: IncidentSetup, end_ts: int | None,
                 batch: int = 500, progress: Callable[[int], None] | None = None) -> EvalRun:  # fmt: skip
    """:func:`run_recording` for ``(key, value)`` messages in production order (``end_ts`` may be None:
    no final heartbeat)."""
    run, partitions = EvalRun(), setup.partitions
    flows = {p: setup.case_flow(p) for p in range(partitions)}
    linkers = {p: setup.report_linker(p) for p in range(partitions)}
    pending: dict[int, list[Message]] = defaultdict(list)
    offsets: Counter[int] = Counter()

    def drain(p: int) -> None:
        flow = flows[p]
        flow.push(pending.pop(p, []))
        _collect(run, p, flow.drain(), linkers, partitions)

    for n, (key, value) in enumerate(messages, 1):
        p = partition_for(key.encode(), partitions) if key is not None else 0
        pending[p].append(Message(value, key, offsets[p]))
        offsets[p] += 1
        run.events += 1
        if len(pending[p]) >= batch:
            drain(p)
        if progress is not None and n % 1000 == 0:
            progress(n)
    for p in range(partitions):
        drain(p)
        if end_ts is not None:
            flows[p].heartbeat(end_ts)
            _collect(run, p, flows[p].drain(), linkers, partitions)
    return run


def _collect(run: EvalRun, p: int, out: Outbox, linkers: dict[int, ReportLinker], partitions: int) -> None:
    run.rows.extend(row for _, _, row in out.updates)
    run.rejects.extend(out.rejects)
    run.counts.update(out.counts)
    for key, _ts, report in out.reports:
        linkers[partition_for(key.encode(), partitions)].push(key, report)
    if out.frontier is not None:
        for linker in linkers.values():
            linker.advance(p, out.frontier)
    for linker in linkers.values():
        lo = linker.drain()
        run.rows.extend(row for _, _, row in lo.updates)
        run.counts.update(lo.counts)


@dataclass(frozen=True)
class Score:
    """Detected items against the truth: exact matches, missed truth items, false detections."""

    truth: int
    detected: int
    matched: int
    missed: list[Any]
    false: list[Any]

    @property
    def perfect(self) -> bool:
        """Every truth item found and nothing else."""
        return not self.missed and not self.false


def truth_of(recording: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The recording's ground truth ``(header, entries)`` (``FileNotFoundError`` if it has none)."""
    rec = Recording.open(recording)
    name = rec.extra.get("ground_truth") or "ground_truth.jsonl.gz"
    path = recording / name
    if not path.is_file():
        raise FileNotFoundError(f"{recording} has no ground truth ({name}): not a simulator recording")
    return read_truth(path)


def score_breaches(truth: Iterable[dict[str, Any]], detected: Iterable[BreachKey]) -> Score:
    """Match detected breaches to ``deadline_breach`` truth entries exactly (case, step, start, time).

    Example
    -------
    >>> t = [{"truth": "deadline_breach", "case_id": "A", "step": "dispatch", "clock_start_ts": 0,
    ...       "deadline_ts": 600000, "done_ts": None}]
    >>> s = score_breaches(t, [("A", "dispatch", 0, 600000), ("B", "handle", 0, 5)])
    >>> s.matched, s.false, s.perfect
    (1, [('B', 'handle', 0, 5)], False)
    """
    want = {(e["case_id"], e["step"], e["clock_start_ts"], e["deadline_ts"])
            for e in truth if e["truth"] == "deadline_breach"}  # fmt: skip
    got = set(detected)
    return Score(len(want), len(got), len(want & got), sorted(want - got), sorted(got - want))


def score_links(truth: Iterable[dict[str, Any]], detected: Iterable[tuple[str, str]]) -> Score:
    """Match detected duplicate links to the truth's groups (every later report → the group's first)."""
    want = {(cid, g["case_ids"][0]) for g in truth if g["truth"] == "duplicate_group" for cid in g["case_ids"][1:]}
    got = set(detected)
    return Score(len(want), len(got), len(want & got), sorted(want - got), sorted(got - want))
