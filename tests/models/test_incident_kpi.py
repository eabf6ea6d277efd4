"""KPI definitions on a hand-computed example (see the docstring of models.incidents.kpi)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from models.incidents.kpi import KpiRow, backlog, compute_kpis, step_times

T0 = 1795190400000  # 2026-11-21 00:00 Asia/Shanghai
MIN = 60_000
H = 60 * MIN
DAY1, DAY2 = "2026-11-21", "2026-11-22"


def case(cid: str, dims: dict[str, str], steps: list[tuple[str, int]]) -> list[dict[str, Any]]:
    out = []
    for t, at in steps:
        e: dict[str, Any] = {"case_id": cid, "ts": T0 + at, "transition": t}
        if t == "report":
            e.update(dims)
        out.append(e)
    return out


HULI = {"district": "huli", "street": "S1"}
SIMING = {"district": "siming", "street": "S2"}
EVENTS = (
    # A: handle takes 3 h against a 2 h limit (E0505); everything else on time. 6 steps, 5 on time.
    case("A", {**HULI, "grid": "G1", "channel": "hotline_12345", "category": "E05", "subcategory": "E0505"},
         [("report", H), ("register", H + 10 * MIN), ("dispatch", H + 15 * MIN), ("handle", 4 * H + 15 * MIN),
          ("feedback", 4 * H + 30 * MIN), ("verify", 5 * H), ("close", 5 * H + 30 * MIN)])
    # B: registered after 60 min (late), reopened once, closed. 9 steps, 8 on time.
    + case("B", {**HULI, "grid": "G2", "channel": "wechat", "category": "E01", "subcategory": "E0103"},
           [("report", 2 * H), ("register", 3 * H), ("dispatch", 3 * H + 5 * MIN), ("handle", 10 * H),
            ("feedback", 10 * H + 30 * MIN), ("verify_fail", 12 * H), ("handle", 13 * H),
            ("feedback", 13 * H + 20 * MIN), ("verify", 14 * H), ("close", 14 * H + 10 * MIN)])
    # C: dispatched 20 min after register (late); handled on day 2.
    + case("C", {**SIMING, "grid": "G3", "channel": "hotline_12345", "category": "E01", "subcategory": "E0103"},
           [("report", 20 * H), ("register", 20 * H + 20 * MIN), ("dispatch", 20 * H + 40 * MIN),
            ("handle", 30 * H)])
    # D: rejected exactly at the 30 min limit (on time: ts <= deadline); never registered.
    + case("D", {**SIMING, "grid": "G3", "channel": "app_photo", "category": "E01", "subcategory": "E0101"},
           [("report", 22 * H), ("reject", 22 * H + 30 * MIN)])
    # E: only reported.
    + case("E", {**HULI, "grid": "G1", "channel": "hotline_12345", "category": "E01", "subcategory": "E0103"},
           [("report", H + 30 * MIN)])
)  # fmt: skip
AS_OF = T0 + 30 * H


def test_all_cases_per_day() -> None:
    rows = compute_kpis(EVENTS, as_of=AS_OF)
    assert rows == [
        KpiRow(DAY1, "*", registered=3, handled=3, closed=2, steps_done=18, steps_on_time=15,
               closed_on_day=2, reopened=1),
        KpiRow(DAY2, "*", registered=0, handled=0, closed=0, steps_done=1, steps_on_time=1,
               closed_on_day=0, reopened=0),
    ]  # fmt: skip
    d1, d2 = rows
    assert d1.disposal_rate == 1.0 and d1.closure_rate == pytest.approx(2 / 3)
    assert d1.on_time_rate == pytest.approx(15 / 18) and d1.reopen_rate == 0.5
    assert d2.disposal_rate is None and d2.reopen_rate is None and d2.on_time_rate == 1.0


def test_by_district() -> None:
    rows = {(r.day, r.group): r for r in compute_kpis(EVENTS, by="district", as_of=AS_OF)}
    assert set(rows) == {(DAY1, "huli"), (DAY1, "siming"), (DAY2, "siming")}
    h, s = rows[(DAY1, "huli")], rows[(DAY1, "siming")]
    assert (h.registered, h.handled, h.closed, h.steps_done, h.steps_on_time, h.closed_on_day, h.reopened) == (
        2, 2, 2, 15, 13, 2, 1)  # fmt: skip
    assert (s.registered, s.handled, s.closed, s.steps_done, s.steps_on_time, s.closed_on_day) == (
        1,
        1,
        0,
        3,
        2,
        0,
    )
    assert s.closure_rate == 0.0 and s.reopen_rate is None


def test_other_dimensions() -> None:
    by_channel = {
        (r.day, r.group): r.registered for r in compute_kpis(EVENTS, by="channel", as_of=AS_OF)
    }
    assert by_channel[(DAY1, "hotline_12345")] == 2 and by_channel[(DAY1, "wechat")] == 1
    by_grid = {(r.day, r.group): r.steps_done for r in compute_kpis(EVENTS, by="grid", as_of=AS_OF)}
    assert by_grid == {(DAY1, "G1"): 6, (DAY1, "G2"): 9, (DAY1, "G3"): 3, (DAY2, "G3"): 1}
    by_cat = {r.group for r in compute_kpis(EVENTS, by="category", as_of=AS_OF)}
    assert by_cat == {"E01", "E05"}
    no_district = compute_kpis(
        [{**e, "district": None} for e in EVENTS], by="district", as_of=AS_OF
    )
    assert {r.group for r in no_district} == {""}
    with pytest.raises(ValueError):
        compute_kpis(EVENTS, by="colour")


def test_as_of_cuts_events() -> None:
    rows = compute_kpis(EVENTS, as_of=AS_OF - H)
    assert len(rows) == 1 and rows[0].handled == 2 and rows[0].disposal_rate == pytest.approx(2 / 3)
    assert compute_kpis(EVENTS) == compute_kpis(EVENTS, as_of=AS_OF)  # default: latest ts


def test_noise_and_order_do_not_change_kpis() -> None:
    noisy = list(EVENTS)
    noisy.append(dict(EVENTS[10]))  # B's first handle delivered twice
    noisy.append({"case_id": "C", "ts": T0 + 21 * H, "transition": "close"})  # illegal
    noisy.append({"case_id": "Z", "ts": T0 + 21 * H, "transition": "handle"})  # never reported
    random.Random(1).shuffle(noisy)
    assert compute_kpis(noisy, by="street", as_of=AS_OF) == compute_kpis(
        EVENTS, by="street", as_of=AS_OF
    )


def test_local_day_boundary() -> None:
    # A's register at 01:10 local on the 21st is still the 20th in UTC.
    utc = {r.day: r.registered for r in compute_kpis(EVENTS, as_of=AS_OF, utc_offset_hours=0)}
    assert utc["2026-11-20"] == 2 and utc["2026-11-21"] == 1


def test_step_times() -> None:
    st = {(s.day, s.step): s for s in step_times(EVENTS, as_of=AS_OF)}
    reg = st[(DAY1, "register")]  # A 10, B 60, C 20, D 30 (reject) minutes
    assert reg.n == 4 and reg.median_ms == 25 * MIN and reg.p90_ms == pytest.approx(51 * MIN)
    dis = st[(DAY1, "dispatch")]  # 5, 5, 20 minutes
    assert dis.n == 3 and dis.median_ms == 5 * MIN and dis.p90_ms == pytest.approx(17 * MIN)
    han = st[(DAY1, "handle")]  # A 3 h, B 6 h 55 min, B again 1 h (clock restarts at verify_fail)
    assert han.n == 3 and han.median_ms == 3 * H
    assert st[(DAY2, "handle")].median_ms == st[(DAY2, "handle")].p90_ms == 9 * H + 20 * MIN
    assert st[(DAY1, "verify")].n == 3  # A verify, B verify_fail, B verify


def test_backlog() -> None:
    assert backlog(EVENTS, as_of=AS_OF) == {
        "*": {"<1h": 0, "1-4h": 0, "4-24h": 1, "1-3d": 1, ">=3d": 0}
    }
    by_d = backlog(EVENTS, by="district", as_of=AS_OF)
    assert (
        by_d["huli"]["1-3d"] == 1
        and by_d["siming"]["4-24h"] == 1
        and sum(by_d["huli"].values()) == 1
    )
    early = backlog(EVENTS, as_of=T0 + 5 * H + 15 * MIN)  # A verified (open), B and E young
    assert early["*"] == {"<1h": 0, "1-4h": 2, "4-24h": 1, "1-3d": 0, ">=3d": 0}
