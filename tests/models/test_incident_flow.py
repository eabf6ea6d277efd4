from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from models.incidents.attribution import Attributor
from models.incidents.flow import CaseFlow, Message, Outbox

T0 = 1795244400000  # 2026-11-21 15:00 Asia/Shanghai
MIN = 60_000
KEY = b"k"
SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample" / "incident_events.jsonl.gz"
SAMPLE_END = 1793584800000  # the sample's end (manifest: extra.simulator.end_ts)


def msg(offset: int, **e: Any) -> Message:
    return Message(orjson.dumps(e), e.get("case_id"), offset)


def report(offset: int, case_id: str, ts: int, **kw: Any) -> Message:
    e = {"case_id": case_id, "ts": ts, "transition": "report", "channel": "wechat", "category": "E01",
         "subcategory": "E0102", "lat": 24.48, "lon": 118.09, "reporter_phone": "13912345678", **kw}
    return msg(offset, **{k: v for k, v in e.items() if v is not None})


def flow(lateness_ms: int = 5 * MIN, **kw: Any) -> CaseFlow:
    return CaseFlow(0, Attributor(), KEY, lateness_ms=lateness_ms, **kw)


def sample_messages() -> list[Message]:
    with gzip.open(SAMPLE) as fh:
        lines = [orjson.loads(line) for line in fh]
    return [Message(d["v"].encode(), d["k"], i) for i, d in enumerate(lines)]


def run(f: CaseFlow, batches: list[list[Message]], end: int | None = None) -> Outbox:
    total = Outbox()
    for b in batches:
        f.push(b)
        o = f.drain()
        total.updates += o.updates
        total.reports += o.reports
        total.rejects += o.rejects
    if end is not None:
        f.heartbeat(end)
        o = f.drain()
        total.updates += o.updates
        total.rejects += o.rejects
    return total


def test_illegal_transition_is_dead_lettered_and_leaves_the_case_unchanged() -> None:
    f = flow(lateness_ms=0)
    f.push([report(0, "A", T0), msg(1, case_id="A", ts=T0 + MIN, transition="register")])
    f.push([msg(2, case_id="A", ts=T0 + 2 * MIN, transition="dispatch")])
    f.heartbeat(T0 + 2 * MIN + 1)
    f.drain()
    before = f.snapshot("A")
    f.push([msg(3, case_id="A", ts=T0 + 3 * MIN, transition="verify", text="打 13912345678")])
    f.heartbeat(T0 + 4 * MIN)
    out = f.drain()
    (r,) = out.rejects
    assert (r.offset, r.key, r.reason) == (3, "A", "illegal_transition")
    assert r.detail == "illegal transition dispatch→verify for case A in state dispatched (allowed: handle, resolve)"
    assert b"13912345678" not in r.payload and orjson.loads(r.payload)["text"] == "打 139****5678"
    assert not [u for u in out.updates if u[2].get("transition") == "verify"]
    assert f.processor.states["A"].status == "dispatched"
    assert orjson.loads(f.snapshot("A"))["s"] == orjson.loads(before)["s"]  # type: ignore[arg-type]


def test_unknown_codes_never_create_a_case() -> None:
    f = flow()
    f.push([report(0, "A", T0, category="E77", subcategory=None), report(1, "B", T0, channel="fax"),
            report(2, "C", T0, subcategory="E0177")])  # fmt: skip
    out = f.drain()
    assert [(r.key, r.reason) for r in out.rejects] == [
        ("A", "unknown_category"), ("B", "unknown_channel"), ("C", "unknown_subcategory")]
    assert out.updates == [] and f.processor.states == {} and f.snapshot("A") is None


def test_late_events_are_dead_lettered_and_redeliveries_are_not() -> None:
    f = flow(lateness_ms=MIN)
    f.push([report(0, "A", T0), report(1, "B", T0 + 10 * MIN)])
    f.drain()
    state = f.processor.states["A"]
    f.push([msg(2, case_id="A", ts=T0 + 2 * MIN, transition="register"), report(3, "A", T0)])
    out = f.drain()
    assert [(r.reason, r.offset) for r in out.rejects] == [("late", 2)]
    assert "late by" in out.rejects[0].detail
    assert out.counts["duplicate"] == 1  # the re-delivered report: already applied, not "late"
    assert f.processor.states["A"] is state


def test_breach_fires_on_the_watermark_with_the_exact_deadline() -> None:
    f = flow(lateness_ms=MIN)
    f.push([report(0, "A", T0)])
    f.heartbeat(T0 + 30 * MIN)  # the frontier reaches the deadline itself: still on time
    assert [u for u in f.drain().updates if u[2]["kind"] == "breach"] == []
    f.push([report(1, "B", T0 + 32 * MIN)])  # watermark T0+32min, frontier T0+31min > deadline
    breaches = [u[2] for u in f.drain().updates if u[2]["kind"] == "breach"]
    assert [(b["case_id"], b["step"], b["breach_ms"], b["since_ms"]) for b in breaches] == [
        ("A", "register", T0 + 30 * MIN, T0)]


def test_outputs_do_not_depend_on_batch_boundaries() -> None:
    messages, end = sample_messages(), SAMPLE_END
    whole = run(flow(), [messages], end)
    single = run(flow(), [[m] for m in messages], end)
    chunks = run(flow(), [messages[i:i + 37] for i in range(0, len(messages), 37)], end)
    rows = [u[2] for u in whole.updates if u[2]["kind"] != "case"]
    assert rows == [u[2] for u in single.updates if u[2]["kind"] != "case"]
    assert rows == [u[2] for u in chunks.updates if u[2]["kind"] != "case"]
    latest = {u[0]: u[2] for u in whole.updates if u[2]["kind"] == "case"}
    assert latest == {u[0]: u[2] for u in single.updates if u[2]["kind"] == "case"}
    assert len([r for r in rows if r["kind"] == "breach"]) == 7
    assert whole.rejects == []


@pytest.mark.parametrize("cut", [100, 250])
def test_restart_from_snapshots_gives_the_same_outputs(cut: int) -> None:
    messages, end = sample_messages(), SAMPLE_END
    reference = run(flow(), [messages[:cut], messages[cut:]], end)
    first = flow()
    head = run(first, [messages[:cut]])
    table: dict[str, bytes | None] = {}
    for cid in {orjson.loads(m.value)["case_id"] for m in messages[:cut]}:
        table[cid] = first.snapshot(cid)
    second = flow()
    assert first.processor.buffer.watermark is not None
    second.restore_watermark(first.processor.buffer.watermark)
    assert all(second.restore(v) for v in table.values() if v)
    # Re-delivery of the last 20 messages before the cut (a crash before the commit), then the rest.
    tail = run(second, [messages[cut - 20:cut], messages[cut:]], end)
    assert tail.rejects == []
    got = [u[2] for u in head.updates + tail.updates if u[2]["kind"] != "case"]
    want = [u[2] for u in reference.updates if u[2]["kind"] != "case"]
    assert sorted(map(orjson.dumps, got)) == sorted(map(orjson.dumps, want))
    uninterrupted = flow()
    run(uninterrupted, [messages], end)
    assert second.processor.states == uninterrupted.processor.states


def test_no_phone_number_leaves_the_flow() -> None:
    messages = sample_messages()
    phones = {orjson.loads(m.value).get("reporter_phone") for m in messages} - {None}
    assert len(phones) > 20
    f = flow()
    out = run(f, [messages, [Message(b'{"case_id": 1, "reporter_phone": "%s"}' % next(iter(phones)).encode(),
                                     None, 999)]], SAMPLE_END)  # fmt: skip
    blobs = [orjson.dumps(u) for u in out.updates + out.reports] + [r.payload for r in out.rejects]
    blobs += [f.snapshot(cid) or b"" for cid in f.processor.states]
    text = b"\n".join(blobs)
    assert not [p for p in phones if p.encode() in text]
    assert any(u[2].get("reporter", "").startswith("h:") for u in out.updates)


def test_closed_cases_leave_the_state_after_retention() -> None:
    f = flow(lateness_ms=0, retention_ms=60 * MIN)
    steps = ["register", "dispatch", "handle", "feedback", "verify", "close"]
    f.push([report(0, "A", T0)] + [msg(i + 1, case_id="A", ts=T0 + (i + 1) * MIN, transition=t)
                                   for i, t in enumerate(steps)])  # fmt: skip
    f.heartbeat(T0 + 10 * MIN)
    f.drain()
    assert f.processor.states["A"].status == "closed" and f.snapshot("A") is not None
    f.heartbeat(T0 + 3 * 60 * MIN)
    out = f.drain()
    assert "A" in out.dirty and f.snapshot("A") is None and out.counts["evicted"] == 1


def test_a_new_case_reported_behind_the_frontier_is_kept() -> None:
    # A detector's feed running behind the case system's: its reports still open cases, and deadlines
    # already behind the frontier are reported at once, stamped with the deadline.
    f = flow(lateness_ms=MIN)
    f.push([report(0, "A", T0 + 60 * MIN)])
    f.push([report(1, "S", T0, channel="sensor", category="E21", subcategory="E2101", reporter_phone=None)])
    out = f.drain()
    assert out.rejects == [] and out.counts["late_report"] == 1
    assert f.processor.states["S"].status == "reported" and f.snapshot("S") is not None
    breaches = [u[2] for u in out.updates if u[2]["kind"] == "breach"]
    assert [(b["case_id"], b["step"], b["breach_ms"]) for b in breaches] == [("S", "register", T0 + 30 * MIN)]
    assert [k for k, _, _ in out.reports] == ["E2101"]  # still handed on to duplicate linking
    f.push([msg(3, case_id="S", ts=T0 + MIN, transition="register")])  # its later events stay subject to lateness
    assert [r.reason for r in f.drain().rejects] == ["late"]
