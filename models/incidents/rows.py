"""The rows the case stream publishes on ``incident.updates`` (one JSON object each, field ``kind``).

Every row is a deterministic function of the case's applied events, so a replay or a re-delivery
produces identical rows; the sinks store them in ReplacingMergeTree tables keyed by their identity
(``sinks/sql/004_incidents.sql``). Times are epoch ms in ``*_ms`` fields (0 = none).

``case``
    The case's latest state; ``version`` (applied transitions + breaches reported) grows with
    every change, so the newest row wins.
``transition``
    One applied transition; for one that completes a step: the step, when it started, its
    deadline and whether it was on time (the inputs of the KPIs of :mod:`.kpi`).
``breach``
    A step deadline that passed (``breach_ms == deadline_ms``, exact in event time).
``duplicate``
    A report linked to an earlier case of the same problem (from :mod:`.linking`).

Grouping dimensions (``district, street, community, grid, category, subcategory, channel``) are the
report's, on every row of the case, as :mod:`.kpi` defines them.
"""

from __future__ import annotations

__all__ = ["DIMENSIONS", "info_of", "match_key", "case_row", "transition_row", "breach_row", "duplicate_row"]

from typing import Any

from models.incidents.deadline_tracker import Breach
from models.incidents.deadlines import COMPLETES, STEP_AFTER, DeadlinePolicy, due_at
from models.incidents.lifecycle import CLOSING, CaseState

DIMENSIONS = ("district", "street", "community", "grid", "category", "subcategory", "channel")


def info_of(report: dict[str, Any]) -> dict[str, Any]:
    """What a case keeps from its (clean, attributed) report besides its lifecycle state.

    Example
    -------
    >>> info_of({"case_id": "A", "ts": 1, "transition": "report", "category": "E01", "lat": 24.5, "lon": 118.1})
    {'district': '', 'street': '', 'community': '', 'grid': '', 'category': 'E01', 'subcategory': '',
     'channel': '', 'lat': 24.5, 'lon': 118.1, 'reporter': '', 'text': '', 'breaches': 0}
    """
    info: dict[str, Any] = {d: str(report.get(d) or "") for d in DIMENSIONS}
    info.update(lat=report.get("lat"), lon=report.get("lon"), reporter=report.get("reporter") or "",
                text=report.get("text") or "", breaches=0)  # fmt: skip
    return info


def match_key(report: dict[str, Any], match_on: str = "subcategory") -> str | None:
    """What two duplicate reports must share: the subcategory (else category), or the category.

    Example
    -------
    >>> match_key({"category": "E01", "subcategory": "E0102"}), match_key({"category": "E01"})
    ('E0102', 'E01')
    """
    if match_on == "subcategory" and report.get("subcategory"):
        return str(report["subcategory"])
    return str(report["category"]) if report.get("category") else None


def _dims(info: dict[str, Any]) -> dict[str, Any]:
    return {d: info[d] for d in DIMENSIONS}


def _first(state: CaseState, transition: str) -> int:
    return next((ts for t, ts in state.history if t == transition), 0)


def case_row(state: CaseState, info: dict[str, Any], policy: DeadlinePolicy | None = None) -> dict[str, Any]:
    """The ``case`` row: latest state, classification (as reported and current), place, deadline."""
    return {
        "kind": "case", "case_id": state.case_id, "status": state.status, **_dims(info),
        "cur_category": state.category or "", "cur_subcategory": state.subcategory or "",
        "lat": info["lat"], "lon": info["lon"], "reporter": info["reporter"], "text": info["text"],
        "reported_ms": state.reported_ts, "status_ms": state.status_ts,
        "registered_ms": _first(state, "register"), "closed_ms": next((ts for t, ts in state.history if t in CLOSING), 0),
        "reopens": state.reopens, "step": STEP_AFTER.get(state.status, ""),
        "deadline_ms": due_at(state, None, policy) or 0, "breaches": info["breaches"],
        "version": len(state.history) + info["breaches"],
    }


def transition_row(state: CaseState, previous: CaseState | None, info: dict[str, Any],
                   policy: DeadlinePolicy | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``transition`` row of the transition that led to ``state`` from ``previous``."""
    transition, ts = state.history[-1]
    step = COMPLETES.get(transition) if previous is not None else None
    deadline = due_at(previous, step, policy) if previous is not None and step is not None else None
    return {
        "kind": "transition", "case_id": state.case_id, "seq": len(state.history), "ts_ms": ts,
        "transition": transition, "from_status": previous.status if previous is not None else "",
        "to_status": state.status, "step": step or "",
        "step_start_ms": previous.status_ts if previous is not None and step else 0,
        "deadline_ms": deadline or 0, "on_time": int(deadline is None or ts <= deadline),
        "reopens": state.reopens, **_dims(info),
    }


def breach_row(b: Breach, info: dict[str, Any]) -> dict[str, Any]:
    """The ``breach`` row of a deadline that passed."""
    return {
        "kind": "breach", "case_id": b.case_id, "step": b.step, "status": b.status,
        "since_ms": b.since_ts, "deadline_ms": b.deadline_ts, "breach_ms": b.breach_ts, **_dims(info),
    }


def duplicate_row(case_id: str, parent_case_id: str, ts: int, key: str) -> dict[str, Any]:
    """The ``duplicate`` row: ``case_id``'s report repeats ``parent_case_id``'s problem.

    Example
    -------
    >>> duplicate_row("B", "A", 5, "E0102")["parent_case_id"]
    'A'
    """
    return {"kind": "duplicate", "case_id": case_id, "parent_case_id": parent_case_id, "ts_ms": ts,
            "match_key": key}  # fmt: skip
