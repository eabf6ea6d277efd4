from __future__ import annotations

from typing import Any

from models.incidents.deadline_tracker import Breach
from models.incidents.duplicates import DuplicateLinker
from models.incidents.processor import Applied, IncidentProcessor
from models.incidents.reorder import Late

T0 = 1795244400000
MIN = 60_000
HOUR = 60 * MIN


def report(case_id: str, ts: int, lat: float = 24.48, **kw: Any) -> dict[str, Any]:
    return {"case_id": case_id, "ts": ts, "transition": "report", "category": "E01",
            "subcategory": "E0102", "lat": lat, "lon": 118.09, **kw}  # fmt: skip


def test_duplicates_linked_on_report_and_forgotten_on_close() -> None:
    p = IncidentProcessor(allowed_lateness_ms=0, linker=DuplicateLinker())
    out = p.push(report("A", T0)) + p.push(report("B", T0 + 5 * MIN)) + p.advance_to(T0 + 6 * MIN)
    applied = [o for o in out if isinstance(o, Applied)]
    assert [(o.event["case_id"], o.parent_case_id) for o in applied] == [("A", None), ("B", "A")]
    for i, t in enumerate(["reject"]):
        p.push({"case_id": "A", "ts": T0 + (7 + i) * MIN, "transition": t})
    out = p.push(report("C", T0 + 10 * MIN)) + p.advance_to(T0 + 11 * MIN)
    (c,) = [o for o in out if isinstance(o, Applied) and o.event["case_id"] == "C"]
    assert c.parent_case_id == "B"  # A was rejected and forgotten; B is still open


def test_illegal_and_late_events_are_reported() -> None:
    p = IncidentProcessor(allowed_lateness_ms=MIN)
    p.push(report("A", T0))
    out = p.push({"case_id": "A", "ts": T0 + 10 * MIN, "transition": "dispatch"})
    out += p.advance_to(T0 + 20 * MIN)
    bad = [o for o in out if isinstance(o, Applied) and not o.outcome.ok]
    assert len(bad) == 1 and bad[0].outcome.kind == "illegal"
    (late,) = p.push({"case_id": "A", "ts": T0 + 2 * MIN, "transition": "register"})
    assert isinstance(late, Late) and "late by" in late.reason
    assert p.states["A"].status == "reported"


def test_final_cases_are_evicted_after_retention() -> None:
    p = IncidentProcessor(allowed_lateness_ms=0, retention_ms=HOUR)
    p.push(report("A", T0))
    p.push({"case_id": "A", "ts": T0 + MIN, "transition": "reject"})
    p.advance_to(T0 + 2 * MIN)
    assert p.states["A"].status == "rejected"
    p.push(report("B", T0 + 2 * HOUR))
    out = p.advance_to(T0 + 2 * HOUR + 1)
    assert "A" not in p.states and "B" in p.states
    assert [type(o) for o in out] == [Applied]
    breaches = p.advance_to(T0 + 3 * HOUR)
    assert [(b.case_id, b.step) for b in breaches if isinstance(b, Breach)] == [("B", "register")]


def test_flush_releases_held_events() -> None:
    p = IncidentProcessor(allowed_lateness_ms=HOUR)
    assert p.push(report("A", T0)) == []
    out = p.flush()
    assert len(out) == 1 and isinstance(out[0], Applied) and out[0].outcome.ok
