"""One partition's case processing: reorder, apply, link duplicates, report deadline breaches.

Composes :class:`~models.incidents.reorder.CaseBuffer`, :func:`~models.incidents.lifecycle.apply`,
:class:`~models.incidents.duplicates.DuplicateLinker` and
:class:`~models.incidents.deadline_tracker.DeadlineTracker` in the one order that is correct: before a
released event is applied, the deadline tracker is advanced to that event's ts, so a deadline that
passed before the event is reported even though the event then completes the step (late, but done).
The watermark is the highest event time pushed (or one given to :meth:`advance_to`).
"""

from __future__ import annotations

__all__ = ["Applied", "IncidentProcessor"]

import heapq
from dataclasses import dataclass
from typing import Any

from models.incidents.deadline_tracker import Breach, DeadlineTracker
from models.incidents.deadlines import DeadlinePolicy
from models.incidents.duplicates import DuplicateLinker
from models.incidents.lifecycle import CaseState, Outcome, apply, event_ms
from models.incidents.reorder import CaseBuffer, Late


@dataclass(frozen=True, slots=True)
class Applied:
    """A released event and what :func:`apply` made of it (``outcome.kind`` may be illegal etc.).

    ``parent_case_id`` is set on an applied ``report`` that duplicates an earlier case.
    ``previous`` is the case's state before the event (``None`` for a report or an unknown case).
    """

    event: dict[str, Any]
    state: CaseState | None
    outcome: Outcome
    parent_case_id: str | None = None
    previous: CaseState | None = None


Output = Applied | Breach | Late


class IncidentProcessor:
    """Stateful, deterministic case processing driven by event time only.

    Parameters
    ----------
    allowed_lateness_ms
        Reorder window (see :class:`~models.incidents.reorder.CaseBuffer`).
    policy
        Deadline policy (``None``: defaults).
    linker
        Duplicate linker for reports (``None``: no linking).
    retention_ms
        Closed/rejected cases are forgotten once their last transition is this far behind the
        release frontier; a re-delivered event for a forgotten case is then reported as illegal.

    Example
    -------
    >>> p = IncidentProcessor(allowed_lateness_ms=0)
    >>> t0 = 1795244400000
    >>> out = p.push({"case_id": "A", "ts": t0, "transition": "report", "category": "E01"})
    >>> out += p.advance_to(t0 + 31 * 60_000)
    >>> [type(o).__name__ for o in out], p.states["A"].status
    (['Applied', 'Breach'], 'reported')
    """

    def __init__(
        self,
        allowed_lateness_ms: int = 60_000,
        policy: DeadlinePolicy | None = None,
        linker: DuplicateLinker | None = None,
        retention_ms: int = 24 * 3_600_000,
    ) -> None:
        self.allowed_lateness_ms = allowed_lateness_ms
        self.policy = policy
        self.linker = linker
        self.retention_ms = retention_ms
        self.buffer = CaseBuffer(allowed_lateness_ms)
        self.tracker = DeadlineTracker(policy)
        self.states: dict[str, CaseState] = {}
        self._final: list[tuple[int, str]] = []  # (ts of the final transition, case_id)
        #: Case ids evicted since the caller last cleared this list (their persisted state can go).
        self.evicted: list[str] = []

    def push(self, event: dict[str, Any]) -> list[Output]:
        """Take one event; return everything its event time makes due (possibly nothing)."""
        late = self.buffer.push(event)
        if late is not None:
            return [late]
        return self.advance_to(event_ms(event["ts"]))

    def advance_to(self, watermark_ms: int) -> list[Output]:
        """Move the watermark; release, apply and report what is due."""
        out = self._run(self.buffer.advance_to(watermark_ms))
        frontier = self.buffer.frontier
        assert frontier is not None
        out.extend(self.tracker.advance_to(frontier))
        self._evict(frontier)
        return out

    def apply_now(self, event: dict[str, Any]) -> list[Output]:
        """Apply ``event`` at once, bypassing the reorder buffer; deadlines already behind the
        watermark are reported by the next :meth:`advance_to`, stamped exactly.

        Meant for the report of a case with no other event (held or applied) that arrives behind the
        frontier: it cannot disorder that case's events, so refusing it as late would only lose it.
        """
        return self._run([event])

    def flush(self) -> list[Output]:
        """Release and apply everything held (end of a replay); deadlines are not forced."""
        return self._run(self.buffer.flush())

    def _run(self, events: list[dict[str, Any]]) -> list[Output]:
        out: list[Output] = []
        for e in events:
            ts = event_ms(e["ts"])
            out.extend(self.tracker.advance_to(ts))
            case_id = e.get("case_id")
            old = self.states.get(case_id) if isinstance(case_id, str) else None
            state, outcome = apply(old, e)
            parent = None
            if outcome.ok and state is not None:
                self.states[state.case_id] = state
                self.tracker.observe(state)
                if state.final:
                    heapq.heappush(self._final, (state.status_ts, state.case_id))
                if self.linker is not None and e["transition"] == "report":
                    parent = self.linker.link(e)
                elif self.linker is not None and state.final:
                    self.linker.forget(state.case_id)
            out.append(Applied(e, state, outcome, parent, old))
        return out

    def restore(self, state: CaseState, fired: tuple[str, int] | None = None) -> None:
        """Put back a case's state after a restart (``fired``: its current step's breach, if reported).

        Call :meth:`restore_watermark` first; a deadline already behind the frontier that was not
        reported before the restart is reported by the next :meth:`advance_to`.
        """
        self.states[state.case_id] = state
        if state.final:
            heapq.heappush(self._final, (state.status_ts, state.case_id))
            return
        if fired is not None:
            self.tracker.mark_fired(state.case_id, *fired)
        self.tracker.observe(state)

    def restore_watermark(self, watermark_ms: int) -> None:
        """Put back the watermark after a restart, before any event is pushed or state restored."""
        self.buffer.advance_to(watermark_ms)
        frontier = self.buffer.frontier
        assert frontier is not None
        self.tracker.advance_to(frontier)

    def _evict(self, frontier: int) -> None:
        horizon = frontier - self.retention_ms
        while self._final and self._final[0][0] < horizon:
            ts, cid = heapq.heappop(self._final)
            state = self.states.get(cid)
            if state is None or state.status_ts != ts or not state.final:
                continue  # a stale entry
            del self.states[cid]
            self.tracker.forget(cid)
            self.evicted.append(cid)
