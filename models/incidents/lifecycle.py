"""The case lifecycle as a pure state machine.

States and transitions (``docs/schemas.md``)::

    (none) ─report→ reported ─register→ registered ─dispatch→ dispatched ─handle→ handled
    reported ─reject→ rejected (final)                             ▲                │ feedback
                                                     verify_fail  │                ▼
    closed (final) ←close─ verified ←verify──────────────────── feedback ───────────┘
    any open state ─resolve→ closed (final)

``verify_fail`` (核查不通过) sends a case from ``feedback`` back to ``dispatched`` and counts a reopen.
``resolve`` (自动结案) closes a case raised by a machine (a sensor alert) when its condition cleared; on a
case people already closed or rejected it changes nothing (outcome ``moot``, not an error).
:func:`apply` never raises on bad input: it returns the unchanged state and an :class:`Outcome`
with the reason, so the caller can dead-letter or count it.
"""

from __future__ import annotations

__all__ = [
    "TRANSITIONS",
    "STATES",
    "FINAL_STATES",
    "RANK",
    "CLOSING",
    "CaseState",
    "Outcome",
    "apply",
    "event_ms",
]

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from models.timefmt import parse_ts_ms

#: transition → (states it may leave, state it enters).
TRANSITIONS: dict[str, tuple[frozenset[str | None], str]] = {
    "report": (frozenset({None}), "reported"),
    "register": (frozenset({"reported"}), "registered"),
    "reject": (frozenset({"reported"}), "rejected"),
    "dispatch": (frozenset({"registered"}), "dispatched"),
    "handle": (frozenset({"dispatched"}), "handled"),
    "feedback": (frozenset({"handled"}), "feedback"),
    "verify": (frozenset({"feedback"}), "verified"),
    "verify_fail": (frozenset({"feedback"}), "dispatched"),
    "close": (frozenset({"verified"}), "closed"),
    "resolve": (frozenset({"reported", "registered", "dispatched", "handled", "feedback", "verified"}), "closed"),
}
STATES = (
    "reported",
    "registered",
    "dispatched",
    "handled",
    "feedback",
    "verified",
    "closed",
    "rejected",
)
FINAL_STATES = frozenset({"closed", "rejected"})
#: Position of a transition in the normal flow; breaks ties between events with the same ts.
RANK = {"report": 0, "register": 1, "reject": 1, "dispatch": 2, "handle": 3, "feedback": 4,
        "verify": 5, "verify_fail": 5, "close": 6, "resolve": 6}  # fmt: skip
#: Transitions that close a case.
CLOSING = frozenset({"close", "resolve"})


@dataclass(frozen=True, slots=True)
class CaseState:
    """Compact state of one case.

    ``status_ts`` is when the case entered ``status``; ``history`` holds every applied
    ``(transition, ts)`` (a case has about seven, more when reopened), which makes re-delivered
    events idempotent and lets deadlines and KPIs find when each step started.
    """

    case_id: str
    status: str
    category: str | None
    subcategory: str | None
    channel: str | None
    reported_ts: int
    status_ts: int
    reopens: int = 0
    history: tuple[tuple[str, int], ...] = ()

    @property
    def final(self) -> bool:
        """Whether the case is closed or rejected."""
        return self.status in FINAL_STATES

    @property
    def last_transition(self) -> str:
        """The most recent applied transition."""
        return self.history[-1][0]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of :func:`apply`: ``applied``, ``duplicate`` (already applied, no change), ``moot`` (a
    ``resolve`` of a case already closed or rejected: no change), ``illegal`` (not allowed from the current
    state) or ``invalid`` (malformed event)."""

    kind: Literal["applied", "duplicate", "moot", "illegal", "invalid"]
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the state changed."""
        return self.kind == "applied"


def event_ms(ts: Any) -> int:
    """Event time as epoch ms from epoch ms, an ISO string with offset or an aware datetime.

    Example
    -------
    >>> event_ms("2026-11-21T07:03:00Z")
    1795244580000
    """
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError("naive datetime (no UTC offset)")
        return parse_ts_ms(ts.isoformat())
    return parse_ts_ms(ts)


def apply(state: CaseState | None, event: dict[str, Any]) -> tuple[CaseState | None, Outcome]:
    """Apply one case event; return ``(new_state, outcome)``.

    On anything but ``applied`` the returned state is ``state`` itself (unchanged). The event dict
    is not mutated.

    Example
    -------
    >>> s, o = apply(None, {"case_id": "A", "ts": 1795244580000, "transition": "report",
    ...                     "category": "E01", "subcategory": "E0103", "channel": "wechat"})
    >>> s.status, o.kind
    ('reported', 'applied')
    >>> s2, o = apply(s, {"case_id": "A", "ts": 1795244640000, "transition": "dispatch"})
    >>> s2 is s, o.reason
    (True, 'illegal transition report→dispatch for case A in state reported (allowed: register, reject, resolve)')
    >>> apply(s, {"case_id": "A", "ts": 1795244580000, "transition": "report"})[1].kind
    'duplicate'
    """
    case_id = event.get("case_id")
    transition = event.get("transition")
    if not isinstance(case_id, str) or not case_id:
        return state, Outcome("invalid", "missing case_id")
    if transition not in TRANSITIONS:
        return state, Outcome("invalid", f"unknown transition {transition!r} for case {case_id}")
    try:
        ts = event_ms(event.get("ts"))
    except ValueError as exc:
        return state, Outcome("invalid", f"bad ts for case {case_id}: {exc}")
    if state is not None and state.case_id != case_id:
        return state, Outcome(
            "invalid", f"event for case {case_id} applied to case {state.case_id}"
        )
    if state is not None and (transition, ts) in state.history:
        return state, Outcome("duplicate", f"duplicate {transition} at {ts} for case {case_id}")

    sources, target = TRANSITIONS[transition]
    current = state.status if state is not None else None
    if transition == "resolve" and state is not None and state.final:
        return state, Outcome("moot", f"resolve for case {case_id}: already {current}")
    if current not in sources:
        if state is None:
            reason = f"illegal transition {transition} for case {case_id}: no report received"
        else:
            allowed = (
                ", ".join(t for t, (src, _) in TRANSITIONS.items() if current in src) or "none"
            )
            reason = (
                f"illegal transition {state.last_transition}→{transition} for case {case_id} "
                f"in state {current} (allowed: {allowed})"
            )
        return state, Outcome("illegal", reason)

    if state is None:
        category = event.get("category")
        if not isinstance(category, str) or not category:
            return None, Outcome("invalid", f"report for case {case_id} has no category")
        sub, chan = event.get("subcategory"), event.get("channel")
        new = CaseState(
            case_id=case_id,
            status=target,
            category=category,
            subcategory=sub if isinstance(sub, str) and sub else None,
            channel=chan if isinstance(chan, str) and chan else None,
            reported_ts=ts,
            status_ts=ts,
            history=((transition, ts),),
        )
        return new, Outcome("applied")

    if ts < state.status_ts:
        return state, Outcome(
            "illegal",
            f"{transition} at {ts} for case {case_id} precedes its {state.last_transition} "
            f"at {state.status_ts}",
        )
    # A later event may reclassify the case (the centre corrects the category when registering).
    category, sub = event.get("category"), event.get("subcategory")
    category = category if isinstance(category, str) and category else state.category
    if not (isinstance(sub, str) and sub):
        sub = state.subcategory if category == state.category else None
    new = replace(
        state,
        status=target,
        category=category,
        subcategory=sub,
        status_ts=ts,
        reopens=state.reopens + (transition == "verify_fail"),
        history=(*state.history, (transition, ts)),
    )
    return new, Outcome("applied")
