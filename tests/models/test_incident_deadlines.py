from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from models.incidents.deadline_tracker import Breach, DeadlineTracker
from models.incidents.deadlines import (
    COMPLETES,
    DEFAULT_STEP_MS,
    DeadlinePolicy,
    due_at,
    step_start,
)
from models.incidents.lifecycle import CaseState, apply
from models.incidents.processor import Applied, IncidentProcessor

T0 = 1795244400123  # deliberately not on a second boundary
MIN = 60_000
HOUR = 60 * MIN


def walk(path: list[tuple[str, int]], case_id: str = "A", sub: str = "E0103") -> CaseState:
    state = None
    for t, ts in path:
        e: dict[str, Any] = {"case_id": case_id, "ts": ts, "transition": t}
        if t == "report":
            e.update(category=sub[:3], subcategory=sub)
        state, out = apply(state, e)
        assert out.ok, out.reason
    assert state is not None
    return state


def test_policy_limits_and_precedence() -> None:
    p = DeadlinePolicy()
    assert p.limit_ms("register", "E01") == 30 * MIN
    assert p.limit_ms("dispatch", "E01") == 10 * MIN
    assert p.limit_ms("handle", "C01", "C0101") == 2 * HOUR  # from the category table
    assert p.limit_ms("handle", "E01", "E0101") == 120 * HOUR
    assert p.limit_ms("handle", "E04", None) == 4 * HOUR  # category fallback
    assert p.limit_ms("verify", "E01") == 24 * HOUR
    q = DeadlinePolicy(step_ms={"verify": 2 * HOUR},
                       overrides={("E01", "verify"): 3 * HOUR, ("E0103", "verify"): HOUR})  # fmt: skip
    assert q.limit_ms("verify", "E01", "E0103") == HOUR
    assert q.limit_ms("verify", "E01", "E0104") == 3 * HOUR
    assert q.limit_ms("verify", "E05", "E0501") == 2 * HOUR
    assert q.limit_ms("close", "E05") == DEFAULT_STEP_MS["close"]
    with pytest.raises(ValueError):
        p.limit_ms("escalate", "E01")


def test_due_at_per_state() -> None:
    path = [("report", T0), ("register", T0 + MIN), ("dispatch", T0 + 2 * MIN), ("handle", T0 + HOUR),
            ("feedback", T0 + 2 * HOUR), ("verify", T0 + 3 * HOUR), ("close", T0 + 4 * HOUR)]  # fmt: skip
    expected = [T0 + 30 * MIN, T0 + MIN + 10 * MIN, T0 + 2 * MIN + 24 * HOUR, T0 + HOUR + HOUR,
                T0 + 2 * HOUR + 24 * HOUR, T0 + 3 * HOUR + HOUR, None]  # fmt: skip
    for k in range(1, len(path) + 1):
        assert due_at(walk(path[:k])) == expected[k - 1]
    done = walk(path)
    assert (
        due_at(done, "handle") == T0 + 2 * MIN + 24 * HOUR
    )  # steps already done keep their deadline
    assert due_at(walk(path[:2]), "verify") is None


def test_handle_clock_restarts_after_verify_fail() -> None:
    s = walk([("report", T0), ("register", T0), ("dispatch", T0), ("handle", T0 + HOUR),
              ("feedback", T0 + HOUR), ("verify_fail", T0 + 5 * HOUR)])  # fmt: skip
    assert s.status == "dispatched" and step_start(s, "handle") == T0 + 5 * HOUR
    assert due_at(s) == T0 + 5 * HOUR + 24 * HOUR


@pytest.mark.parametrize("slot_ms", [1, 1000, 60_000, 3_600_000])
def test_breach_exact_to_the_ms(slot_ms: int) -> None:
    tr = DeadlineTracker(slot_ms=slot_ms)
    tr.observe(walk([("report", T0)]))
    deadline = T0 + 30 * MIN
    assert tr.advance_to(deadline - 1) == []
    assert tr.advance_to(deadline) == []
    (b,) = tr.advance_to(deadline + 1)
    assert b == Breach("A", "register", "reported", T0, deadline, deadline, "E01", "E0103")
    assert tr.advance_to(deadline + 10 * HOUR) == [] and len(tr) == 0


def test_transition_at_deadline_is_on_time_and_cancels() -> None:
    tr = DeadlineTracker()
    tr.observe(walk([("report", T0)]))
    tr.advance_to(T0 + 30 * MIN)
    s = walk([("report", T0), ("register", T0 + 30 * MIN)])
    tr.observe(s)
    assert tr.advance_to(T0 + 30 * MIN + 1) == []
    (b,) = tr.advance_to(T0 + 50 * MIN)
    assert (b.step, b.breach_ts) == ("dispatch", T0 + 40 * MIN)


def test_breach_once_even_if_state_is_observed_again() -> None:
    tr = DeadlineTracker()
    s = walk([("report", T0)])
    tr.observe(s)
    assert len(tr.advance_to(T0 + HOUR)) == 1
    tr.observe(s)  # a re-delivered event makes the agent observe the same state again
    assert tr.advance_to(T0 + 2 * HOUR) == []


def test_final_state_and_cancel_clear_timers() -> None:
    tr = DeadlineTracker()
    tr.observe(walk([("report", T0)], case_id="A"))
    tr.observe(walk([("report", T0)], case_id="B"))
    tr.observe(walk([("report", T0), ("reject", T0 + MIN)], case_id="A"))
    tr.cancel("B")
    assert len(tr) == 0 and tr.advance_to(T0 + 100 * HOUR) == []


def test_overdue_when_observed_fires_with_deadline_stamp() -> None:
    tr = DeadlineTracker()
    tr.advance_to(T0 + 10 * HOUR)
    tr.observe(walk([("report", T0)]))
    (b,) = tr.advance_to(T0 + 10 * HOUR)
    assert b.breach_ts == T0 + 30 * MIN


def _simulate(
    seed: int, n_cases: int, policy: DeadlinePolicy, min_delay: int = 0
) -> tuple[list[dict[str, Any]], set[tuple[str, str, int]], int]:
    """Random legal cases; returns events, the breaches a brute-force check expects, the end time."""
    rng = random.Random(seed)
    normal = ["register", "dispatch", "handle", "feedback", "verify", "close"]
    reopen = ["register", "dispatch", "handle", "feedback", "verify_fail",
              "handle", "feedback", "verify", "close"]  # fmt: skip
    events: list[dict[str, Any]] = []
    expected: set[tuple[str, str, int]] = set()
    end = T0 + 1000 * HOUR  # after every deadline
    for i in range(n_cases):
        cid = f"C{i:03d}"
        ts = T0 + rng.randrange(0, 20 * HOUR)
        events.append({"case_id": cid, "ts": ts, "transition": "report",
                       "category": "E01", "subcategory": "E0103"})  # fmt: skip
        seq = reopen if rng.random() < 0.3 else normal
        stop = rng.randrange(1, len(seq) + 1)  # cases stalled before transition `stop`
        for k, t in enumerate(seq):
            step = COMPLETES[t]
            limit = policy.limit_ms(step, "E01", "E0103")
            deadline = ts + limit  # the step started at the previous transition's ts
            if k >= stop:
                if deadline < end:
                    expected.add((cid, step, deadline))
                break
            delay = rng.choice(
                [min_delay, 1, limit - 1, limit, limit + 1, rng.randrange(min_delay, 2 * limit)]
            )
            if delay > limit:
                expected.add((cid, step, deadline))
            ts += delay
            events.append({"case_id": cid, "ts": ts, "transition": t})
    return events, expected, end


@pytest.mark.parametrize("seed", [1, 2])
def test_breaches_match_brute_force_in_order(seed: int) -> None:
    policy = DeadlinePolicy(step_ms={"handle": 3 * HOUR})
    events, expected, end = _simulate(seed, 150, policy)
    events.sort(key=lambda e: e["ts"])
    tr = DeadlineTracker(policy, slot_ms=7_000)
    states: dict[str, CaseState | None] = {}
    got: list[Breach] = []
    for e in events:
        got += tr.advance_to(e["ts"])  # every transition before e["ts"] has been observed
        s, out = apply(states.get(e["case_id"]), e)
        assert out.ok, out.reason
        states[e["case_id"]] = s
        assert s is not None
        tr.observe(s)
    got += tr.advance_to(end)
    assert {(b.case_id, b.step, b.breach_ts) for b in got} == expected
    assert len(got) == len(expected) and all(b.breach_ts == b.deadline_ts for b in got)
    assert [b.breach_ts for b in got] == sorted(b.breach_ts for b in got)
    assert len(expected) > 20


def test_breaches_match_brute_force_through_processor() -> None:
    policy = DeadlinePolicy(step_ms={"handle": 3 * HOUR})
    # Same-ts transitions of one case are ordered by lifecycle rank, which cannot order a
    # verify_fail and the next handle in the same millisecond: keep 1 ms between them.
    events, expected, end = _simulate(5, 120, policy, min_delay=1)
    rng = random.Random(9)
    lateness = 5 * MIN
    arrived = sorted(events, key=lambda e: e["ts"] + rng.randrange(0, lateness))
    assert arrived != sorted(events, key=lambda e: e["ts"])
    proc = IncidentProcessor(allowed_lateness_ms=lateness, policy=policy)
    out = []
    for e in arrived:
        out += proc.push(e)
    out += proc.flush() + proc.advance_to(end)
    applied = [o for o in out if isinstance(o, Applied)]
    assert len(applied) == len(events) and all(o.outcome.ok for o in applied)
    got = [o for o in out if isinstance(o, Breach)]
    assert {(b.case_id, b.step, b.breach_ts) for b in got} == expected
    assert len(got) == len(expected)


def test_naive_driver_order_would_miss_breaches() -> None:
    """Why the processor advances the tracker to each event's ts before applying it."""
    tr = DeadlineTracker()
    s = walk([("report", T0)])
    tr.observe(s)
    late_register = walk([("report", T0), ("register", T0 + 31 * MIN)])
    tr.observe(late_register)  # applied first, then advanced: the breach is lost
    assert tr.advance_to(T0 + 32 * MIN) == []
    proc = IncidentProcessor(allowed_lateness_ms=0)
    out = proc.push({"case_id": "A", "ts": T0, "transition": "report", "category": "E01"})
    out += proc.push({"case_id": "A", "ts": T0 + 31 * MIN, "transition": "register"})
    out += proc.advance_to(T0 + 31 * MIN + 1)
    assert [type(o).__name__ for o in out] == ["Applied", "Breach", "Applied"]
    assert isinstance(out[1], Breach) and out[1].breach_ts == T0 + 30 * MIN


def test_tracker_pickles() -> None:
    tr = DeadlineTracker()
    tr.observe(walk([("report", T0)]))
    clone = pickle.loads(pickle.dumps(tr))
    assert clone.advance_to(T0 + HOUR) == tr.advance_to(T0 + HOUR) != []
