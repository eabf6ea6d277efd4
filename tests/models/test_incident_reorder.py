from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from models.incidents.lifecycle import CaseState, apply
from models.incidents.reorder import CaseBuffer, Late

T0 = 1795244400000
SEC = 1_000
FLOW = ["report", "register", "dispatch", "handle", "feedback", "verify", "close"]


def case_events(case_id: str, start: int, gap: int = 20 * SEC) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(FLOW):
        e: dict[str, Any] = {"case_id": case_id, "ts": start + i * gap, "transition": t}
        if t == "report":
            e["category"] = "E01"
        out.append(e)
    return out


def test_shuffled_within_lateness_is_put_back_in_order() -> None:
    rng = random.Random(3)
    events = case_events("A", T0) + case_events("B", T0 + 7 * SEC)
    arrived = sorted(events, key=lambda e: e["ts"] + rng.randrange(0, 50 * SEC))  # <= 50 s delay
    assert arrived != sorted(events, key=lambda e: e["ts"])
    buf = CaseBuffer(allowed_lateness_ms=60 * SEC)
    released: list[dict[str, Any]] = []
    max_ts = 0
    for e in arrived:
        assert buf.push(e) is None
        max_ts = max(max_ts, e["ts"])
        released += buf.advance_to(max_ts)
    released += buf.flush()
    assert [e["ts"] for e in released] == sorted(e["ts"] for e in events)
    states: dict[str, CaseState | None] = {"A": None, "B": None}
    for e in released:
        states[e["case_id"]], out = apply(states[e["case_id"]], e)
        assert out.ok, out.reason
    assert all(s is not None and s.status == "closed" for s in states.values())
    assert buf.late_count == 0 and len(buf) == 0


def test_release_waits_for_lateness() -> None:
    buf = CaseBuffer(allowed_lateness_ms=10 * SEC)
    buf.push({"case_id": "A", "ts": T0, "transition": "report"})
    assert buf.advance_to(T0 + 10 * SEC) == []  # frontier == ts: not strictly older yet
    assert len(buf) == 1 and buf.frontier == T0
    assert [e["ts"] for e in buf.advance_to(T0 + 10 * SEC + 1)] == [T0]


def test_late_event_is_reported_not_released() -> None:
    buf = CaseBuffer(allowed_lateness_ms=10 * SEC)
    buf.push({"case_id": "A", "ts": T0 + 30 * SEC, "transition": "register"})
    buf.advance_to(T0 + 30 * SEC)
    late = buf.push({"case_id": "A", "ts": T0 + 19 * SEC, "transition": "report"})
    assert isinstance(late, Late)
    assert late.reason.startswith("late by 1000 ms")
    assert buf.push({"case_id": "A", "ts": T0 + 20 * SEC, "transition": "report"}) is None
    assert buf.late_count == 1 and len(buf) == 2
    bad = buf.push({"case_id": "A", "ts": "yesterday", "transition": "report"})
    assert bad is not None and bad.reason.startswith("unreadable ts")


def test_ties_follow_lifecycle_then_arrival() -> None:
    buf = CaseBuffer(allowed_lateness_ms=0)
    for t in ["close", "verify", "register", "report"]:
        buf.push({"case_id": "A", "ts": T0, "transition": t})
    buf.push({"case_id": "B", "ts": T0, "transition": "report", "n": 1})
    buf.push({"case_id": "C", "ts": T0, "transition": "report", "n": 2})
    out = buf.advance_to(T0 + 1)
    assert [(e["case_id"], e["transition"]) for e in out] == [
        ("A", "report"), ("B", "report"), ("C", "report"), ("A", "register"), ("A", "verify"), ("A", "close"),
    ]  # fmt: skip


def test_watermark_never_goes_back_and_flush_moves_it() -> None:
    buf = CaseBuffer(allowed_lateness_ms=5 * SEC)
    buf.advance_to(T0 + 60 * SEC)
    buf.advance_to(T0)
    assert buf.watermark == T0 + 60 * SEC
    buf.push({"case_id": "A", "ts": T0 + 100 * SEC, "transition": "report"})
    assert [e["ts"] for e in buf.flush()] == [T0 + 100 * SEC]
    assert buf.push({"case_id": "A", "ts": T0 + 99 * SEC, "transition": "report"}) is not None
    assert buf.push({"case_id": "A", "ts": T0 + 101 * SEC, "transition": "report"}) is None


def test_deterministic_for_any_arrival_order_within_lateness() -> None:
    events = case_events("A", T0) + case_events("B", T0 + 3 * SEC) + case_events("C", T0 + 3 * SEC)
    outputs = set()
    for seed in range(5):
        rng = random.Random(seed)
        arrived = sorted(events, key=lambda e: e["ts"] + rng.randrange(0, 30 * SEC))
        buf = CaseBuffer(allowed_lateness_ms=30 * SEC)
        out = []
        for e in arrived:
            buf.push(e)
            out += buf.advance_to(e["ts"])
        out += buf.flush()
        outputs.add(tuple((e["case_id"], e["transition"]) for e in out))
    assert len(outputs) == 1


def test_pickle_round_trip_and_bad_lateness() -> None:
    buf = CaseBuffer(allowed_lateness_ms=5 * SEC)
    buf.push({"case_id": "A", "ts": T0, "transition": "report"})
    clone = pickle.loads(pickle.dumps(buf))
    assert clone.advance_to(T0 + 6 * SEC) == buf.advance_to(T0 + 6 * SEC)
    with pytest.raises(ValueError):
        CaseBuffer(allowed_lateness_ms=-1)
