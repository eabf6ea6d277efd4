"""Decode and validate ``incident.events`` messages, and strip reporters' personal data from them.

:func:`decode_event` turns the bytes of one message into a clean event dict (``ts`` as epoch ms, the
reporter's phone replaced by its keyed hash, free text scrubbed, unknown fields dropped), a
:class:`Heartbeat`, or an :class:`Invalid` with a stable reason code and a readable detail. Codes and
names are checked against the category table and :data:`~models.incidents.channels.CHANNELS`: an
unknown code is refused, never guessed. :func:`sanitize_payload` makes a bad message safe to store
as a dead letter. Nothing here echoes a phone number into a reason or detail.

Reason codes: ``invalid_json``, ``not_an_object``, ``missing_field``, ``wrong_type``,
``bad_timestamp``, ``out_of_range``, ``unknown_transition``, ``unknown_channel``,
``unknown_category``, ``unknown_subcategory``, ``category_mismatch``, ``key_mismatch``, ``clock_ahead`` (dated
after the newest time its message allows: see :func:`models.timefmt.clock_ahead`).
"""

from __future__ import annotations

__all__ = ["Heartbeat", "Invalid", "decode_event", "sanitize_payload", "EVENT_FIELDS"]

from dataclasses import dataclass
from typing import Any

import orjson

from models.incidents.channels import CHANNELS
from models.incidents.lifecycle import TRANSITIONS
from models.incidents.privacy import hash_phone, scrub_text
from models.incidents.taxonomy import CategoryTable
from models.timefmt import clock_ahead, parse_ts_ms

#: Fields kept from an incoming event (``reporter`` is the hash of ``reporter_phone``).
EVENT_FIELDS = ("case_id", "ts", "transition", "channel", "category", "subcategory", "lat", "lon",
                "text", "reporter")  # fmt: skip
_MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``{"heartbeat": true, "ts": ...}``: the source promises no event older than ``ts`` will follow.

    Sources send one to every partition (no key) so deadlines fire during quiet periods and at the
    end of a replay; see ``docs/schemas.md``.
    """

    ts: int


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a message cannot be used: a stable snake_case ``reason`` and a readable ``detail``."""

    reason: str
    detail: str
    case_id: str | None = None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _classification(ev: dict[str, Any], table: CategoryTable, case_id: str) -> Invalid | None:
    cat, sub = ev.get("category"), ev.get("subcategory")
    if not isinstance(cat, str) or (sub is not None and not isinstance(sub, str)):
        return Invalid("wrong_type", f"category and subcategory of case {case_id} must be strings", case_id)
    problem = table.validate(cat, sub or None)
    if problem is None:
        return None
    if cat not in table or table[cat].level != 1:
        return Invalid("unknown_category", f"case {case_id}: {problem}", case_id)
    if sub is None or sub not in table or table[sub].level != 2:
        return Invalid("unknown_subcategory", f"case {case_id}: {problem}", case_id)
    return Invalid("category_mismatch", f"case {case_id}: {problem}", case_id)


def decode_event(
    value: bytes | None, key: str | None, categories: CategoryTable, phone_key: bytes, latest: int | None = None,
) -> dict[str, Any] | Heartbeat | Invalid:
    """A clean case event, a heartbeat, or why the message is invalid.

    ``category``/``subcategory``/``channel`` and ``lat``/``lon`` are required on ``report`` and
    checked whenever present. ``key`` (the message key), when given, must equal ``case_id``: a
    case's state lives on the partition of its key.

    Example
    -------
    >>> from models.incidents.taxonomy import load_categories
    >>> t = load_categories()
    >>> raw = ('{"case_id": "A", "ts": "2026-11-21T15:03:00+08:00", "transition": "report", "channel": "wechat",'
    ...        ' "category": "E01", "subcategory": "E0103", "lat": 24.48, "lon": 118.09,'
    ...        ' "text": "call 13812345678", "reporter_phone": "13812345678", "extra": 1}').encode()
    >>> ev = decode_event(raw, "A", t, b"k")
    >>> ev["ts"], ev["text"], ev["reporter"].startswith("h:"), "reporter_phone" in ev, "extra" in ev
    (1795244580000, 'call 138****5678', True, False, False)
    >>> decode_event(raw.replace(b'"E0103"', b'"E0177"'), "A", t, b"k").reason
    'unknown_subcategory'
    >>> decode_event(b'{"heartbeat": true, "ts": 1795244580000}', None, t, b"k")
    Heartbeat(ts=1795244580000)
    """
    try:
        msg = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return Invalid("invalid_json", f"not JSON: {exc}"[:200])
    if not isinstance(msg, dict):
        return Invalid("not_an_object", f"expected a JSON object, got {type(msg).__name__}")
    if msg.get("heartbeat") is True and "case_id" not in msg:
        try:
            beat = parse_ts_ms(msg.get("ts"))
        except ValueError as exc:
            return Invalid("bad_timestamp", f"heartbeat: {exc}")
        if ahead := clock_ahead(beat, latest):
            return Invalid("clock_ahead", f"heartbeat {ahead}")
        return Heartbeat(beat)
    case_id = msg.get("case_id")
    if case_id is None or case_id == "":
        return Invalid("missing_field", "missing case_id")
    if not isinstance(case_id, str) or len(case_id) > 64:
        return Invalid("wrong_type", "case_id must be a string of 1-64 characters")
    if key is not None and key != case_id:
        return Invalid("key_mismatch", f"message key {key!r} differs from case_id {case_id!r}", case_id)
    transition = msg.get("transition")
    if transition is None:
        return Invalid("missing_field", f"case {case_id}: missing transition", case_id)
    if transition not in TRANSITIONS:
        return Invalid("unknown_transition", f"case {case_id}: unknown transition {str(transition)[:40]!r} "
                       f"(known: {', '.join(TRANSITIONS)})", case_id)  # fmt: skip
    if msg.get("ts") is None:
        return Invalid("missing_field", f"case {case_id}: missing ts", case_id)
    try:
        ts = parse_ts_ms(msg["ts"])
    except ValueError as exc:
        return Invalid("bad_timestamp", f"case {case_id}: {exc}"[:300], case_id)
    if ahead := clock_ahead(ts, latest):
        return Invalid("clock_ahead", f"case {case_id}: event {ahead}", case_id)
    report = transition == "report"
    for name in ("channel", "category", "lat", "lon") if report else ():
        if msg.get(name) is None:
            return Invalid("missing_field", f"case {case_id}: report without {name}", case_id)
    ev: dict[str, Any] = {"case_id": case_id, "ts": ts, "transition": transition}
    chan = msg.get("channel")
    if chan is not None:
        if chan not in CHANNELS:
            return Invalid("unknown_channel", f"case {case_id}: unknown channel {str(chan)[:40]!r}", case_id)
        ev["channel"] = chan
    if report or msg.get("category") is not None or msg.get("subcategory") is not None:
        bad = _classification(msg, categories, case_id)
        if bad is not None:
            return bad
        ev["category"] = msg["category"]
        if msg.get("subcategory"):
            ev["subcategory"] = msg["subcategory"]
    lat, lon = msg.get("lat"), msg.get("lon")
    if lat is not None or lon is not None:
        if not (isinstance(lat, int | float) and isinstance(lon, int | float) and _is_num(lat) and _is_num(lon)):
            return Invalid("wrong_type", f"case {case_id}: lat and lon must both be numbers", case_id)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return Invalid("out_of_range", f"case {case_id}: lat/lon ({lat}, {lon}) out of range", case_id)
        ev["lat"], ev["lon"] = float(lat), float(lon)
    text = msg.get("text")
    if text is not None:
        if not isinstance(text, str):
            return Invalid("wrong_type", f"case {case_id}: text must be a string", case_id)
        ev["text"] = scrub_text(text[:_MAX_TEXT])
    phone = msg.get("reporter_phone")
    if phone is not None:
        if not isinstance(phone, str | int) or isinstance(phone, bool):
            return Invalid("wrong_type", f"case {case_id}: reporter_phone must be a string", case_id)
        ev["reporter"] = hash_phone(str(phone), phone_key)
    return ev


def sanitize_payload(value: bytes | None, phone_key: bytes) -> bytes:
    """The message made safe to store (as a dead letter): the phone hashed, every other string scrubbed.

    ``case_id`` is kept as sent; a message that is not a JSON object is scrubbed as text.

    Example
    -------
    >>> sanitize_payload(b'{"case_id": "A", "reporter_phone": "13812345678", "note": "13812345678"}', b"k")
    b'{"case_id":"A","reporter_phone":"h:...","note":"138****5678"}'
    >>> sanitize_payload(b'{"oops 13812345678', b"k")
    b'{"oops 138****5678'
    """
    try:
        msg = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return scrub_text((value or b"").decode("utf-8", "replace")).encode()
    if not isinstance(msg, dict):
        return scrub_text(orjson.dumps(msg).decode()).encode()

    def clean(k: str, v: Any) -> Any:
        if k == "reporter_phone" and isinstance(v, str | int) and not isinstance(v, bool):
            return hash_phone(str(v), phone_key)
        if k == "case_id" and isinstance(v, str):
            return v
        if isinstance(v, str):
            return scrub_text(v)
        if isinstance(v, int) and not isinstance(v, bool) and k != "ts" and abs(v) >= 10**10:
            return scrub_text(str(v))  # a phone number sent as a number
        if isinstance(v, dict):
            return {str(kk): clean(str(kk), vv) for kk, vv in v.items()}
        if isinstance(v, list):
            return [clean("", x) for x in v]
        return v

    return orjson.dumps({str(k): clean(str(k), v) for k, v in msg.items()})
