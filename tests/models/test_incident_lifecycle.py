from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from models.incidents.lifecycle import FINAL_STATES, STATES, TRANSITIONS, CaseState, apply

T0 = 1795244400000  # 2026-11-21T07:00:00Z
MIN = 60_000

HAPPY = ["report", "register", "dispatch", "handle", "feedback", "verify", "close"]
REOPEN = ["report", "register", "dispatch", "handle", "feedback", "verify_fail",
          "handle", "feedback", "verify", "close"]  # fmt: skip


def ev(transition: str, i: int, case_id: str = "XM-1", **kw: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"case_id": case_id, "ts": T0 + i * MIN, "transition": transition}
    if transition == "report":
        e.update(
            category="E01", subcategory="E0103", channel="hotline_12345", lat=24.48, lon=118.09
        )
    e.update(kw)
    return e


def run(path: list[str]) -> CaseState:
    state = None
    for i, t in enumerate(path):
        state, out = apply(state, ev(t, i))
        assert out.kind == "applied", out.reason
    assert state is not None
    return state


@pytest.mark.parametrize(
    ("path", "final", "reopens"),
    [
        (HAPPY, "closed", 0),
        (["report", "reject"], "rejected", 0),
        (REOPEN, "closed", 1),
        (
            REOPEN[:6]
            + ["handle", "feedback", "verify_fail", "handle", "feedback", "verify", "close"],
            "closed",
            2,
        ),
    ],
)
def test_legal_paths(path: list[str], final: str, reopens: int) -> None:
    state = run(path)
    assert state.status == final and state.final
    assert state.reopens == reopens
    assert [t for t, _ in state.history] == path
    assert state.reported_ts == T0 and state.status_ts == T0 + (len(path) - 1) * MIN
    assert (state.category, state.subcategory, state.channel) == ("E01", "E0103", "hotline_12345")


def test_intermediate_states() -> None:
    seen = [run(HAPPY[: i + 1]).status for i in range(len(HAPPY))]
    assert seen == [
        "reported",
        "registered",
        "dispatched",
        "handled",
        "feedback",
        "verified",
        "closed",
    ]
    assert run(REOPEN[:6]).status == "dispatched"


def _states() -> dict[str | None, CaseState | None]:
    out: dict[str | None, CaseState | None] = {None: None}
    for path in (HAPPY, ["report", "reject"]):
        for i in range(len(path)):
            s = run(path[: i + 1])
            out[s.status] = s
    assert set(out) == {None, *STATES}
    return out


ILLEGAL = [
    (status, t)
    for status in [None, *STATES]
    for t, (sources, _) in TRANSITIONS.items()
    if status not in sources and not (t == "resolve" and status in FINAL_STATES)
]


@pytest.mark.parametrize(("status", "transition"), ILLEGAL)
def test_every_illegal_transition_is_rejected(status: str | None, transition: str) -> None:
    state = _states()[status]
    event = ev(transition, 30)
    before = copy.deepcopy(event)
    new, out = apply(state, event)
    assert new is state
    assert out.kind == "illegal" and not out.ok
    assert transition in out.reason and "XM-1" in out.reason
    if state is None:
        assert out.reason == f"illegal transition {transition} for case XM-1: no report received"
    else:
        assert out.reason.startswith(f"illegal transition {state.last_transition}→{transition} ")
        assert f"in state {status}" in out.reason
    assert event == before


def test_illegal_reason_lists_allowed() -> None:
    s = run(HAPPY[:3])
    _, out = apply(s, ev("register", 9))
    assert (
        out.reason
        == "illegal transition dispatch→register for case XM-1 in state dispatched (allowed: handle, resolve)"
    )
    _, out = apply(run(HAPPY), ev("handle", 9))
    assert out.reason.endswith("(allowed: none)")


def test_count_of_illegal_pairs() -> None:
    # 10 transitions x 9 states (incl. none) minus the 15 legal (source, transition) pairs (resolve from the
    # 6 open states) and the 2 moot ones (resolve of a closed or rejected case).
    assert len(ILLEGAL) == 10 * 9 - 15 - 2


@pytest.mark.parametrize("final", ["closed", "rejected"])
def test_resolve_of_a_final_case_is_moot(final: str) -> None:
    state = _states()[final]
    new, out = apply(state, ev("resolve", 40))
    assert new is state and out.kind == "moot" and not out.ok and final in out.reason


@pytest.mark.parametrize("status", ["reported", "registered", "dispatched", "handled", "feedback", "verified"])
def test_resolve_closes_an_open_case(status: str) -> None:
    state = _states()[status]
    new, out = apply(state, ev("resolve", 40))
    assert out.ok and new is not None and new.status == "closed" and new.final
    assert new.history[-1][0] == "resolve" and new.reopens == state.reopens


@pytest.mark.parametrize("k", range(len(REOPEN)))
def test_redelivered_event_is_duplicate(k: int) -> None:
    state = run(REOPEN)
    t = REOPEN[k]
    new, out = apply(state, ev(t, k))
    assert new is state and out.kind == "duplicate" and t in out.reason


def test_same_transition_other_ts_is_not_duplicate() -> None:
    s = run(HAPPY[:2])
    new, out = apply(s, ev("register", 5))
    assert new is s and out.kind == "illegal"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"ts": T0, "transition": "report"}, "missing case_id"),
        (
            {"case_id": "A", "ts": T0, "transition": "escalate"},
            "unknown transition 'escalate' for case A",
        ),
        (
            {"case_id": "A", "ts": "2026-11-21T07:00:00", "transition": "report"},
            "bad ts for case A: naive",
        ),
        ({"case_id": "A", "transition": "report", "category": "E01"}, "bad ts for case A"),
        ({"case_id": "A", "ts": T0, "transition": "report"}, "report for case A has no category"),
    ],
)
def test_invalid_events(event: dict[str, Any], reason: str) -> None:
    new, out = apply(None, event)
    assert new is None and out.kind == "invalid" and out.reason.startswith(reason)


def test_event_for_other_case_and_backwards_time() -> None:
    s = run(HAPPY[:2])
    new, out = apply(s, ev("dispatch", 5, case_id="XM-2"))
    assert new is s and out.kind == "invalid"
    new, out = apply(s, ev("dispatch", 0))
    assert new is s and out.kind == "illegal" and "precedes its register" in out.reason
    new, out = apply(s, ev("dispatch", 1))  # same ts as register (minute-truncated sources)
    assert out.ok and new is not None and new.status == "dispatched"


def test_timestamp_forms() -> None:
    iso = "2026-11-21T15:00:00+08:00"
    aware = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    for ts in (T0, iso, aware, datetime(2026, 11, 21, 15, 0, tzinfo=timezone(timedelta(hours=8)))):
        s, out = apply(None, {**ev("report", 0), "ts": ts})
        assert out.ok and s is not None and s.reported_ts == T0
    _, out = apply(None, {**ev("report", 0), "ts": datetime(2026, 11, 21, 7, 0)})  # noqa: DTZ001
    assert out.kind == "invalid" and "naive" in out.reason


def test_reclassification() -> None:
    s = run(["report"])
    s2, _ = apply(s, ev("register", 1, category="E01", subcategory="E0104"))
    assert s2 is not None and (s2.category, s2.subcategory) == ("E01", "E0104")
    s3, _ = apply(s, ev("register", 1, category="E05"))
    assert s3 is not None and (s3.category, s3.subcategory) == ("E05", None)
    s4, _ = apply(s, ev("register", 1))
    assert s4 is not None and (s4.category, s4.subcategory) == ("E01", "E0103")


def test_state_pickles_and_is_immutable() -> None:
    s = run(REOPEN)
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(AttributeError):
        s.status = "reported"  # type: ignore[misc]
    assert not hasattr(s, "__dict__")
