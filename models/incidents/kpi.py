"""Reference computation of the centre's KPIs from case transitions.

The ClickHouse views must give the same numbers; these docstrings are the definitions.

Input and conventions
---------------------
* ``events``: case events as in ``docs/schemas.md`` (``case_id, ts, transition`` and, on
  ``report``, ``category, subcategory, channel`` and optionally ``district, street, grid``). They are
  replayed per case in ``(ts, lifecycle rank)`` order through :func:`~models.incidents.lifecycle.apply`;
  only *applied* transitions count (duplicates and illegal ones are ignored, as in the pipeline).
  Only events with ``ts <= as_of`` are used; ``as_of`` defaults to the latest ts.
* A case's group (``district``, ``street``, ``community``, ``grid``, ``category``, ``subcategory``,
  ``channel``) is
  taken from its ``report`` event; a missing value is ``""``. ``by=None`` puts every case in group ``"*"``.
* ``day`` is the local calendar date of a timestamp at ``utc_offset_hours`` (Xiamen: UTC+8 all
  year; ClickHouse ``toDate(ts, 'Asia/Shanghai')``).
* A *step* and its deadline are defined in :mod:`models.incidents.deadlines`; a step's deadline uses
  the case's classification when the step started. It is on time when completed at ``ts <= deadline``.

Definitions (per ``day`` and group)
-----------------------------------
* ``registered``: cases whose first ``register`` falls on ``day`` (the cohort).
* ``handled`` / ``closed``: cases of that cohort with at least one ``handle`` / a ``close`` or ``resolve``.
* ``disposal_rate = handled / registered``; ``closure_rate = closed / registered``.
* ``steps_done``: steps completed on ``day`` (by completion ts); ``steps_on_time``: those done by
  their deadline; ``on_time_rate = steps_on_time / steps_done``.
* ``closed_on_day``: cases whose ``close`` (or ``resolve``) falls on ``day``; ``reopened``: those of them with at
  least one ``verify_fail``; ``reopen_rate = reopened / closed_on_day``.
* A rate with a zero denominator is ``None``. A row exists for every (day, group) with a non-zero count.

:func:`step_times` gives the median and p90 duration of each step (completion ts − start ts) per
completion day, with linear interpolation between order statistics (numpy's default;
ClickHouse ``quantileExactInclusive``). :func:`backlog` counts open cases by age.
"""

from __future__ import annotations

__all__ = ["KpiRow", "StepTimes", "BACKLOG_BUCKETS", "compute_kpis", "step_times", "backlog"]

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from models.incidents.deadlines import COMPLETES, DeadlinePolicy, due_at
from models.incidents.lifecycle import CLOSING, RANK, CaseState, apply, event_ms

_HOUR = 3_600_000
#: (lower bound of age in ms, label); a case falls in the last bucket whose bound it reaches.
BACKLOG_BUCKETS = (
    (0, "<1h"),
    (_HOUR, "1-4h"),
    (4 * _HOUR, "4-24h"),
    (24 * _HOUR, "1-3d"),
    (72 * _HOUR, ">=3d"),
)
DIMENSIONS = ("district", "street", "community", "grid", "category", "subcategory", "channel")


@dataclass(frozen=True, slots=True)
class KpiRow:
    """KPIs of one (day, group); see the module docstring for the definitions."""

    day: str
    group: str
    registered: int
    handled: int
    closed: int
    steps_done: int
    steps_on_time: int
    closed_on_day: int
    reopened: int

    @property
    def disposal_rate(self) -> float | None:
        return self.handled / self.registered if self.registered else None

    @property
    def closure_rate(self) -> float | None:
        return self.closed / self.registered if self.registered else None

    @property
    def on_time_rate(self) -> float | None:
        return self.steps_on_time / self.steps_done if self.steps_done else None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.closed_on_day if self.closed_on_day else None


@dataclass(frozen=True, slots=True)
class StepTimes:
    """Duration statistics of one step over the steps completed on ``day`` in ``group`` (ms)."""

    day: str
    group: str
    step: str
    n: int
    median_ms: float
    p90_ms: float


@dataclass(slots=True)
class _Case:
    group: str
    state: CaseState | None = None
    register_ts: int | None = None
    handled: bool = False
    close_ts: int | None = None
    # (step, start ts, completion ts, deadline)
    steps: list[tuple[str, int, int, int]] = field(default_factory=list)


def _replay(events: Iterable[dict[str, Any]], by: str | None, as_of: int | None,
            policy: DeadlinePolicy | None) -> tuple[dict[str, _Case], int]:  # fmt: skip
    if by is not None and by not in DIMENSIONS:
        raise ValueError(f"by must be one of {DIMENSIONS} or None, not {by!r}")
    per_case: dict[str, list[tuple[int, int, int, dict[str, Any]]]] = defaultdict(list)
    for i, e in enumerate(events):
        per_case[str(e.get("case_id"))].append(
            (event_ms(e["ts"]), RANK.get(str(e.get("transition")), 9), i, e)
        )
    if as_of is None:
        as_of = max((ts for evs in per_case.values() for ts, *_ in evs), default=0)
    cases: dict[str, _Case] = {}
    for case_id, evs in per_case.items():
        evs.sort(key=lambda x: x[:3])
        for ts, _, _, e in evs:
            if ts > as_of:
                break
            c = cases.get(case_id)
            state, outcome = apply(c.state if c else None, e)
            if not outcome.ok or state is None:
                continue
            if c is None:
                group = "*" if by is None else str(e.get(by) or "")
                c = cases[case_id] = _Case(group)
            t = e["transition"]
            if c.state is not None and t in COMPLETES:
                step = COMPLETES[t]
                deadline = due_at(c.state, step, policy)
                assert deadline is not None
                c.steps.append((step, c.state.status_ts, ts, deadline))
            if t == "register" and c.register_ts is None:
                c.register_ts = ts
            c.handled |= t == "handle"
            if t in CLOSING:
                c.close_ts = ts
            c.state = state
    return cases, as_of


def _day(ts: int, utc_offset_hours: float) -> str:
    return (
        (datetime.fromtimestamp(ts / 1000, UTC) + timedelta(hours=utc_offset_hours))
        .date()
        .isoformat()
    )


def compute_kpis(events: Iterable[dict[str, Any]], by: str | None = None, as_of: int | None = None,
                 policy: DeadlinePolicy | None = None, utc_offset_hours: float = 8) -> list[KpiRow]:  # fmt: skip
    """KPI rows per (day, group), sorted.

    Example
    -------
    >>> t0 = 1795219200000  # 2026-11-21 08:00 Asia/Shanghai
    >>> ev = [{"case_id": "A", "ts": t0, "transition": "report", "category": "E01"},
    ...       {"case_id": "A", "ts": t0 + 60_000, "transition": "register"},
    ...       {"case_id": "A", "ts": t0 + 120_000, "transition": "dispatch"}]
    >>> r = compute_kpis(ev)[0]
    >>> r.day, r.registered, r.disposal_rate, r.steps_done, r.on_time_rate
    ('2026-11-21', 1, 0.0, 2, 1.0)
    """
    cases, _ = _replay(events, by, as_of, policy)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 7)
    for c in cases.values():
        if c.register_ts is not None:
            row = counts[(_day(c.register_ts, utc_offset_hours), c.group)]
            row[0] += 1
            row[1] += c.handled
            row[2] += c.close_ts is not None
        for _step, _start, done, deadline in c.steps:
            row = counts[(_day(done, utc_offset_hours), c.group)]
            row[3] += 1
            row[4] += done <= deadline
        if c.close_ts is not None:
            row = counts[(_day(c.close_ts, utc_offset_hours), c.group)]
            row[5] += 1
            row[6] += c.state is not None and c.state.reopens > 0
    return [KpiRow(day, group, *vals) for (day, group), vals in sorted(counts.items())]


def step_times(events: Iterable[dict[str, Any]], by: str | None = None, as_of: int | None = None,
               policy: DeadlinePolicy | None = None, utc_offset_hours: float = 8) -> list[StepTimes]:  # fmt: skip
    """Median and p90 step durations per (completion day, group, step), sorted."""
    cases, _ = _replay(events, by, as_of, policy)
    durations: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for c in cases.values():
        for step, start, done, _deadline in c.steps:
            durations[(_day(done, utc_offset_hours), c.group, step)].append(done - start)
    out = []
    for (day, group, step), ds in sorted(durations.items()):
        med, p90 = np.quantile(np.asarray(ds, dtype=np.float64), [0.5, 0.9])
        out.append(StepTimes(day, group, step, len(ds), float(med), float(p90)))
    return out


def backlog(events: Iterable[dict[str, Any]], by: str | None = None,
            as_of: int | None = None) -> dict[str, dict[str, int]]:  # fmt: skip
    """Open cases at ``as_of`` (reported, neither closed nor rejected) per group and age bucket.

    Age is ``as_of - report ts``; every bucket of :data:`BACKLOG_BUCKETS` is present per group.

    Example
    -------
    >>> t0 = 1795219200000
    >>> ev = [{"case_id": "A", "ts": t0, "transition": "report", "category": "E01"},
    ...       {"case_id": "B", "ts": t0 + 5 * 3_600_000, "transition": "report", "category": "E01"}]
    >>> backlog(ev, as_of=t0 + 6 * 3_600_000)["*"]
    {'<1h': 0, '1-4h': 1, '4-24h': 1, '1-3d': 0, '>=3d': 0}
    """
    cases, as_of_ms = _replay(events, by, as_of, None)
    out: dict[str, dict[str, int]] = {}
    for c in cases.values():
        if c.state is None or c.state.final:
            continue
        age = as_of_ms - c.state.reported_ts
        label = [name for bound, name in BACKLOG_BUCKETS if age >= bound][-1]
        out.setdefault(c.group, {name: 0 for _, name in BACKLOG_BUCKETS})[label] += 1
    return dict(sorted(out.items()))
