"""The keyed stages' queue: one changelog entry per input message, re-deliveries wait once, restarts restore."""

from __future__ import annotations

from typing import NamedTuple

import orjson

from models.bikes.waiting import WaitingMessages


class It(NamedTuple):
    ts: int
    bike: str


def _queue(partition: int = 2) -> WaitingMessages[It]:
    return WaitingMessages(partition, lambda raw: It(*raw))


def _msg(*items: tuple[int, str]) -> tuple[bytes, list[list]]:
    raws = [list(i) for i in items]
    return orjson.dumps({"items": raws}), raws


def test_a_message_delivered_again_while_it_waits_adds_nothing() -> None:
    w = _queue()
    value, raws = _msg((100, "a"), (200, "b"))
    assert w.add(5, value, raws, watermark=0) == ([It(100, "a"), It(200, "b")], 0)
    assert w.add(5, value, raws, watermark=0) == ([], 0)
    assert len(w) == 1 and len(w.entries(watermark=0)) == 1  # one entry, written once


def test_the_same_offset_with_other_bytes_is_another_message() -> None:
    w = _queue()
    v1, r1 = _msg((100, "a"))
    v2, r2 = _msg((100, "z"))  # a recreated topic's message at the same offset
    w.add(5, v1, r1, watermark=0)
    assert w.add(5, v2, r2, watermark=0) == ([It(100, "z")], 0)
    assert len(w) == 2


def test_entries_delete_what_passed_then_write_what_still_waits() -> None:
    w = _queue()
    v1, r1 = _msg((100, "a"), (150, "b"))
    w.add(1, v1, r1, watermark=0)
    [(k1, put1)] = w.entries(watermark=0)
    assert put1 is not None and orjson.loads(put1) == r1
    v2, r2 = _msg((120, "c"))  # passed before it was ever written: neither written nor deleted
    v3, r3 = _msg((90, "late"), (300, "d"))
    assert w.add(2, v2, r2, watermark=0)[1] == 0
    assert w.add(3, v3, r3, watermark=100) == ([It(90, "late"), It(300, "d")], 1)  # 90 is behind: not kept
    out = w.entries(watermark=150)
    assert out[0] == (k1, None) and len(out) == 2
    k3, put3 = out[1]
    assert put3 is not None and orjson.loads(put3) == [[300, "d"]] and len(w) == 1
    assert w.entries(watermark=300) == [(k3, None)] and len(w) == 0


def test_restore_makes_the_written_items_wait_again_and_deletes_them_once_passed() -> None:
    w = _queue()
    written: dict[bytes, bytes | None] = {}
    for offset, items in enumerate([((100, "a"), (400, "b")), ((200, "c"),), ((500, "d"),)]):
        value, raws = _msg(*items)
        w.add(offset, value, raws, watermark=0)
        written.update(w.entries(watermark=250))  # the second message passes within its own batch
    live = {k: v for k, v in written.items() if v is not None}
    assert len(live) == 2
    other = {b"g|3|0|00000000": b'[[1,"x"]]', b"s|2|F1": b"{}"}  # another partition's entry, stage state
    twin = _queue()
    held = twin.restore([*live.items(), *other.items()])
    assert sorted(held) == [It(100, "a"), It(400, "b"), It(500, "d")]  # 100 was applied: it waits again, harmless
    value, raws = _msg((500, "d"))
    assert twin.add(2, value, raws, watermark=250) == ([], 0)  # still waiting: a re-delivery adds nothing
    assert sorted(k for k, v in twin.entries(watermark=450) if v is None) == [k for k in live if b"|0|" in k]
