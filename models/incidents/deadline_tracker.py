"""Event-time timer wheel that reports step deadlines as they pass.

The tracker is driven by event time only: :meth:`DeadlineTracker.advance_to` with a watermark means
"every transition with ``ts < watermark`` has been observed". A breach is therefore certain once
``deadline < watermark`` (a transition exactly at the deadline is still on time), and it is stamped
with the deadline itself, so replaying a feed at any speed gives the same breaches.
"""

from __future__ import annotations

__all__ = ["Breach", "DeadlineTracker"]

import heapq
from dataclasses import dataclass

from models.incidents.deadlines import STEP_AFTER, DeadlinePolicy, due_at
from models.incidents.lifecycle import CaseState


@dataclass(frozen=True, slots=True)
class Breach:
    """A step that was not completed by its deadline; ``breach_ts == deadline_ts``."""

    case_id: str
    step: str
    status: str
    since_ts: int
    deadline_ts: int
    breach_ts: int
    category: str | None
    subcategory: str | None


class DeadlineTracker:
    """One pending deadline per open case, in time slots of ``slot_ms`` (a hashed timer wheel).

    Cancelling is O(1) (a dict delete); :meth:`advance_to` visits only slots that hold timers, in
    order (a heap of slot numbers), so a jump of days costs nothing. A breach is reported once per
    step instance: re-observing the same state after its breach does not re-arm the timer.

    Order matters: call ``advance_to(event ts)`` *before* applying and observing each event (as
    :class:`~models.incidents.processor.IncidentProcessor` does). Applying a late completion first
    would cancel its timer and lose the breach.

    Parameters
    ----------
    policy
        Time limits; ``None`` uses the defaults of :mod:`models.incidents.deadlines`.
    slot_ms
        Width of a wheel slot. Only affects speed, never which or when breaches fire.

    Example
    -------
    >>> from models.incidents.lifecycle import apply
    >>> t0 = 1795244400000
    >>> s, _ = apply(None, {"case_id": "A", "ts": t0, "transition": "report", "category": "E01"})
    >>> tr = DeadlineTracker()
    >>> tr.observe(s)
    >>> tr.advance_to(t0 + 30 * 60_000)          # the deadline itself: a register now is on time
    []
    >>> [(b.step, b.breach_ts - t0) for b in tr.advance_to(t0 + 30 * 60_000 + 1)]
    [('register', 1800000)]
    """

    def __init__(self, policy: DeadlinePolicy | None = None, slot_ms: int = 60_000) -> None:
        if slot_ms <= 0:
            raise ValueError("slot_ms must be > 0")
        self.policy = policy
        self.slot_ms = slot_ms
        self._slots: dict[int, dict[str, Breach]] = {}
        self._heap: list[int] = []
        self._slot_of: dict[str, int] = {}
        self._fired: dict[str, tuple[str, int]] = {}
        self._watermark: int | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    @property
    def watermark(self) -> int | None:
        """The highest watermark passed to :meth:`advance_to`."""
        return self._watermark

    def cancel(self, case_id: str) -> None:
        """Drop the pending deadline of ``case_id`` (no-op if none)."""
        slot = self._slot_of.pop(case_id, None)
        if slot is not None:
            bucket = self._slots[slot]
            del bucket[case_id]
            if not bucket:
                del self._slots[slot]

    def observe(self, state: CaseState) -> None:
        """Re-arm the case's timer for the step its new state waits for (cancel if final).

        Call after every applied transition. A deadline already below the watermark is reported by
        the next :meth:`advance_to`, still stamped with the deadline.
        """
        self.cancel(state.case_id)
        step = STEP_AFTER.get(state.status)
        if step is None:
            self._fired.pop(state.case_id, None)
            return
        if self._fired.get(state.case_id) == (step, state.status_ts):
            return
        self._fired.pop(state.case_id, None)
        deadline = due_at(state, step, self.policy)
        assert deadline is not None  # the case is in the step's start state
        breach = Breach(state.case_id, step, state.status, state.status_ts, deadline, deadline,
                        state.category, state.subcategory)  # fmt: skip
        slot = deadline // self.slot_ms
        bucket = self._slots.get(slot)
        if bucket is None:
            bucket = self._slots[slot] = {}
            heapq.heappush(self._heap, slot)
        bucket[state.case_id] = breach
        self._slot_of[state.case_id] = slot

    def fired_step(self, case_id: str) -> tuple[str, int] | None:
        """``(step, step start ts)`` of the case's current step if its breach was reported, else None."""
        return self._fired.get(case_id)

    def mark_fired(self, case_id: str, step: str, since_ts: int) -> None:
        """Record that the breach of this step instance was reported (restoring after a restart)."""
        self._fired[case_id] = (step, since_ts)

    def forget(self, case_id: str) -> None:
        """Drop everything known about ``case_id`` (e.g. when its state is evicted)."""
        self.cancel(case_id)
        self._fired.pop(case_id, None)

    def advance_to(self, watermark_ms: int) -> list[Breach]:
        """Report every pending deadline ``< watermark_ms``, ordered by (deadline, case_id)."""
        if self._watermark is None or watermark_ms > self._watermark:
            self._watermark = watermark_ms
        w = self._watermark
        fired: list[Breach] = []
        while self._heap and self._heap[0] * self.slot_ms < w:
            slot = self._heap[0]
            bucket = self._slots.get(slot)
            if bucket is None:  # emptied by cancels; a stale heap entry
                heapq.heappop(self._heap)
                continue
            due = [b for b in bucket.values() if b.deadline_ts < w]
            for b in due:
                del bucket[b.case_id]
                del self._slot_of[b.case_id]
                self._fired[b.case_id] = (b.step, b.since_ts)
            fired.extend(due)
            if bucket:  # the rest of this slot lies at or after the watermark
                break
            del self._slots[slot]
            heapq.heappop(self._heap)
        fired.sort(key=lambda b: (b.deadline_ts, b.case_id))
        return fired
