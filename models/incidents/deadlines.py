"""Time limits of the case steps, and an event-time tracker that reports breaches.

A *step* is named after the transition that completes it and starts when the case enters the state
before it:

========  ==============  ====================  ==========================================
step      starts on entry completed by          default limit
========  ==============  ====================  ==========================================
register  reported        register or reject    30 min (受理 → 立案)
dispatch  registered      dispatch              10 min (立案 → 派遣)
handle    dispatched      handle                the subcategory's ``handle_hours``
feedback  handled         feedback              1 h   (处置 → 反馈)
verify    feedback        verify or verify_fail 24 h  (反馈 → 核查)
close     verified        close                 1 h   (核查 → 结案)
========  ==============  ====================  ==========================================

After ``verify_fail`` the case is ``dispatched`` again, so a new handle step starts at that moment.
A step is on time when it completes at or before its deadline (``ts <= deadline``).
"""

from __future__ import annotations

__all__ = [
    "STEPS",
    "STEP_AFTER",
    "COMPLETES",
    "DEFAULT_STEP_MS",
    "DeadlinePolicy",
    "step_start",
    "due_at",
]

from collections.abc import Mapping
from dataclasses import dataclass, field

from models.incidents.lifecycle import TRANSITIONS, CaseState
from models.incidents.taxonomy import CategoryTable, default_categories

_MIN = 60_000
_HOUR = 60 * _MIN

STEPS = ("register", "dispatch", "handle", "feedback", "verify", "close")
#: state → the step that starts when a case enters it.
STEP_AFTER = {"reported": "register", "registered": "dispatch", "dispatched": "handle",
              "handled": "feedback", "feedback": "verify", "verified": "close"}  # fmt: skip
_START_STATE = {step: state for state, step in STEP_AFTER.items()}
#: transition → the step it completes.
COMPLETES = {"register": "register", "reject": "register", "dispatch": "dispatch",
             "handle": "handle", "feedback": "feedback", "verify": "verify",
             "verify_fail": "verify", "close": "close"}  # fmt: skip
#: Default limits in ms; ``handle`` is absent on purpose: it comes from the category table.
DEFAULT_STEP_MS: dict[str, int] = {
    "register": 30 * _MIN,
    "dispatch": 10 * _MIN,
    "feedback": _HOUR,
    "verify": 24 * _HOUR,
    "close": _HOUR,
}


@dataclass(frozen=True, eq=False)
class DeadlinePolicy:
    """Configurable time limits per step and category.

    Parameters
    ----------
    step_ms
        Default limit per step, in ms (missing steps fall back to :data:`DEFAULT_STEP_MS`).
    overrides
        ``(code, step) → ms`` where ``code`` is a subcategory or a category; the subcategory wins.
    categories
        Table giving ``handle_hours``; ``None`` uses the packaged one.

    Example
    -------
    >>> p = DeadlinePolicy(overrides={("E0515", "dispatch"): 5 * 60_000})
    >>> p.limit_ms("handle", "E01", "E0103") / 3_600_000
    24.0
    >>> p.limit_ms("dispatch", "E05", "E0515"), p.limit_ms("dispatch", "E05", "E0514")
    (300000, 600000)
    """

    step_ms: Mapping[str, int] = field(default_factory=dict)
    overrides: Mapping[tuple[str, str], int] = field(default_factory=dict)
    categories: CategoryTable | None = None

    @classmethod
    def from_seconds(
        cls, limits_s: Mapping[str, float], categories: CategoryTable | None = None
    ) -> DeadlinePolicy:
        """A policy from ``{"step": seconds, "code:step": seconds}`` (e.g. a settings value).

        Unknown steps or codes raise ``ValueError``: a typo must not silently keep the default.

        Example
        -------
        >>> p = DeadlinePolicy.from_seconds({"dispatch": 300, "E0515:handle": 1800})
        >>> p.limit_ms("dispatch", "E01"), p.limit_ms("handle", "E05", "E0515")
        (300000, 1800000)
        >>> DeadlinePolicy.from_seconds({"E9999:handle": 60})
        Traceback (most recent call last):
        ...
        ValueError: deadline override 'E9999:handle': unknown category code E9999
        """
        table = categories if categories is not None else default_categories()
        step_ms: dict[str, int] = {}
        overrides: dict[tuple[str, str], int] = {}
        for name, seconds in limits_s.items():
            code, _, step = name.rpartition(":")
            if step not in STEPS:
                raise ValueError(f"deadline override {name!r}: unknown step {step!r} (steps: {', '.join(STEPS)})")
            if seconds <= 0:
                raise ValueError(f"deadline override {name!r}: limit must be > 0 seconds")
            if code and code not in table:
                raise ValueError(f"deadline override {name!r}: unknown category code {code}")
            if code:
                overrides[(code, step)] = round(seconds * 1000)
            else:
                step_ms[step] = round(seconds * 1000)
        return cls(step_ms=step_ms, overrides=overrides, categories=categories)

    def limit_ms(self, step: str, category: str | None, subcategory: str | None = None) -> int:
        """Time limit of ``step`` for a case of this classification, in ms."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}")
        for code in (subcategory, category):
            if code is not None and (code, step) in self.overrides:
                return int(self.overrides[(code, step)])
        if step in self.step_ms:
            return int(self.step_ms[step])
        if step == "handle":
            table = self.categories if self.categories is not None else default_categories()
            return round(table.handle_hours(category, subcategory) * _HOUR)
        return DEFAULT_STEP_MS[step]


_DEFAULT_POLICY = DeadlinePolicy()


def step_start(state: CaseState, step: str) -> int | None:
    """When the latest instance of ``step`` started for this case (``None`` if it never did)."""
    start_state = _START_STATE[step]
    for transition, ts in reversed(state.history):
        if TRANSITIONS[transition][1] == start_state:
            return ts
    return None


def due_at(
    state: CaseState, step: str | None = None, policy: DeadlinePolicy | None = None
) -> int | None:
    """Deadline (epoch ms) of ``step`` for this case; by default of the step it is waiting for.

    Returns ``None`` for a final case (no next step) or a step the case has not reached.

    Example
    -------
    >>> from models.incidents.lifecycle import apply
    >>> s, _ = apply(None, {"case_id": "A", "ts": 1795244400000, "transition": "report",
    ...                     "category": "C01", "subcategory": "C0103"})
    >>> due_at(s) - s.reported_ts
    1800000
    >>> s, _ = apply(s, {"case_id": "A", "ts": 1795244460000, "transition": "register"})
    >>> s, _ = apply(s, {"case_id": "A", "ts": 1795244520000, "transition": "dispatch"})
    >>> due_at(s, "handle") - 1795244520000, due_at(s, "verify")
    (7200000, None)
    """
    if step is None:
        step = STEP_AFTER.get(state.status)
        if step is None:
            return None
    start = step_start(state, step)
    if start is None:
        return None
    policy = policy or _DEFAULT_POLICY
    return start + policy.limit_ms(step, state.category, state.subcategory)
