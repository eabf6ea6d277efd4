from __future__ import annotations

from typing import Any

import orjson
import pytest

from models.incidents.events import Heartbeat, Invalid, decode_event, sanitize_payload
from models.incidents.privacy import hash_phone
from models.incidents.taxonomy import load_categories

T = load_categories()
KEY = b"test-key"
TS = "2026-11-21T15:03:00+08:00"


def report(**kw: Any) -> dict[str, Any]:
    r = {"case_id": "XM1", "ts": TS, "transition": "report", "channel": "hotline_12345", "category": "E01",
         "subcategory": "E0103", "lat": 24.48, "lon": 118.09}  # fmt: skip
    r.update(kw)
    return {k: v for k, v in r.items() if v is not None}


def decode(msg: Any, key: str | None = "XM1") -> dict[str, Any] | Heartbeat | Invalid:
    return decode_event(orjson.dumps(msg) if not isinstance(msg, bytes) else msg, key, T, KEY)


def test_a_clean_report_keeps_known_fields_only() -> None:
    ev = decode(report(text="井盖丢了 13912345678", reporter_phone="+86 139 1234 5678", secret="x"))
    assert isinstance(ev, dict)
    assert ev == {"case_id": "XM1", "ts": 1795244580000, "transition": "report", "channel": "hotline_12345",
                  "category": "E01", "subcategory": "E0103", "lat": 24.48, "lon": 118.09,
                  "text": "井盖丢了 139****5678", "reporter": hash_phone("13912345678", KEY)}  # fmt: skip


@pytest.mark.parametrize(("msg", "reason"), [
    (b"{not json", "invalid_json"),
    ([1, 2], "not_an_object"),
    (report(case_id=None), "missing_field"),
    (report(transition=None), "missing_field"),
    (report(ts=None), "missing_field"),
    (report(channel=None), "missing_field"),
    (report(category=None), "missing_field"),
    (report(lat=None), "missing_field"),
    (report(case_id=5), "wrong_type"),
    (report(category=["E01"]), "wrong_type"),
    (report(subcategory=3), "wrong_type"),
    (report(ts="2026-11-21T15:03:00"), "bad_timestamp"),
    (report(transition="escalate"), "unknown_transition"),
    (report(channel="fax"), "unknown_channel"),
    (report(category="E77", subcategory=None), "unknown_category"),
    (report(category="E0103", subcategory=None), "unknown_category"),
    (report(subcategory="E0177"), "unknown_subcategory"),
    (report(subcategory="C0101"), "category_mismatch"),
    (report(lat="24.48"), "wrong_type"),
    (report(lat=124.0), "out_of_range"),
    (report(text=7), "wrong_type"),
    (report(reporter_phone=True), "wrong_type"),
])  # fmt: skip
def test_bad_messages_get_a_stable_reason(msg: Any, reason: str) -> None:
    out = decode(msg)
    assert isinstance(out, Invalid), out
    assert out.reason == reason
    assert "1391234" not in out.detail


def test_codes_are_checked_on_later_events_and_key_must_match() -> None:
    later = {"case_id": "XM1", "ts": TS, "transition": "register", "category": "E99"}
    assert decode(later).reason == "unknown_category"  # type: ignore[union-attr]
    ok = decode({"case_id": "XM1", "ts": TS, "transition": "dispatch"})
    assert isinstance(ok, dict) and "category" not in ok
    assert decode(report(), key="XM2").reason == "key_mismatch"  # type: ignore[union-attr]
    assert isinstance(decode(report(), key=None), dict)


def test_heartbeats() -> None:
    assert decode({"heartbeat": True, "ts": TS}, key=None) == Heartbeat(1795244580000)
    assert decode({"heartbeat": True, "ts": "yesterday"}, key=None).reason == "bad_timestamp"  # type: ignore[union-attr]


def test_sanitized_payloads_hold_no_phone_number() -> None:
    raw = orjson.dumps({**report(reporter_phone="13912345678", text="回电13912345678"), "nested": {"tel": 13912345678}})
    clean = sanitize_payload(raw, KEY)
    assert b"13912345678" not in clean
    d = orjson.loads(clean)
    assert d["reporter_phone"] == hash_phone("13912345678", KEY) and d["case_id"] == "XM1"
    assert d["nested"]["tel"] == "139****5678"
    assert b"13912345678" not in sanitize_payload(b'garbage "13912345678', KEY)


def test_events_and_heartbeats_dated_after_their_message_allows_are_clock_ahead() -> None:
    ts = decode(report())["ts"]  # type: ignore[index]
    ahead = decode_event(orjson.dumps(report()), "XM1", T, KEY, latest=ts - 1)
    assert isinstance(ahead, Invalid) and ahead.reason == "clock_ahead" and ahead.case_id == "XM1"
    assert ahead.detail.startswith("case XM1: event dated")
    assert isinstance(decode_event(orjson.dumps(report()), "XM1", T, KEY, latest=ts), dict)  # at the limit
    beat = decode_event(orjson.dumps({"heartbeat": True, "ts": ts}), None, T, KEY, latest=ts - 300_000)
    assert isinstance(beat, Invalid) and beat.reason == "clock_ahead"
    assert decode_event(orjson.dumps({"heartbeat": True, "ts": ts}), None, T, KEY, latest=None) == Heartbeat(ts)
