from __future__ import annotations

import random
import re

import pytest

from models.incidents.privacy import hash_phone, mask_phone, normalize_phone, scrub_text

ELEVEN_DIGITS = re.compile(r"\d{11}")


def test_hash_is_keyed_stable_and_normalized() -> None:
    h = hash_phone("13812345678", b"secret-1")
    assert re.fullmatch(r"h:[a-p]{16}", h)  # hex written as letters: never a digit run
    assert h == hash_phone("13812345678", b"secret-1")
    assert (
        h
        == hash_phone("+86 138-1234-5678", b"secret-1")
        == hash_phone("0086 13812345678", b"secret-1")
    )
    assert h != hash_phone("13812345678", b"secret-2")
    assert h != hash_phone("13812345679", b"secret-1")
    assert "12345678" not in h
    assert len(hash_phone("13812345678", b"k", length=32)) == 34
    with pytest.raises(ValueError):
        hash_phone("13812345678", b"")
    with pytest.raises(ValueError):
        hash_phone("13812345678", b"k", length=4)


def test_hash_matches_reference_hmac() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"13812345678", hashlib.sha256).hexdigest()[:16]
    letters = "".join("abcdefghijklmnop"[int(c, 16)] for c in expected)
    assert hash_phone("138 1234 5678", b"k") == "h:" + letters


def test_mask_and_normalize() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "138****5678"
    assert mask_phone("05925551234") == "059****1234"
    assert mask_phone("5551234") == "*****34"
    assert mask_phone("") == ""
    assert normalize_phone("86-13812345678") == "13812345678"
    assert normalize_phone("8612345") == "8612345"  # a short number starting with 86 is kept


def test_scrub_masks_phones_in_text() -> None:
    text = "市民（电话13812345678）反映：湖滨南路 3 号井盖缺失，回电 +86 139-0592-1234 或 0592-5551234。"
    out = scrub_text(text)
    assert "138****5678" in out and "139****1234" in out
    assert not ELEVEN_DIGITS.search(out)
    assert not re.search(r"\d{4}[\s-]?\d{4}[\s-]?\d{3}", out)
    assert "湖滨南路 3 号井盖缺失" in out  # ordinary numbers stay


def test_scrub_keeps_non_phone_numbers() -> None:
    text = "2026年11月21日 7:03 在 12 号楼，编号 A17001，温度 25.5 度"
    assert scrub_text(text) == text


def test_scrub_random_texts_leave_no_eleven_digit_run() -> None:
    rng = random.Random(4)
    seps = ["", " ", "-", "."]
    for _ in range(300):
        digits = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        sep = rng.choice(seps)
        phone = digits[:3] + sep + digits[3:7] + sep + digits[7:]
        prefix = rng.choice(["", "+86", "86 ", "0086-"])
        junk = rng.choice(["", "ID 3502031990010112345", "tel:", "号码"])
        text = f"{junk}{prefix}{phone}请尽快处理{rng.randrange(1000)}"
        out = scrub_text(text)
        assert not ELEVEN_DIGITS.search(out.replace(" ", "").replace("-", "").replace(".", "")), (
            text,
            out,
        )
        assert digits[3:7] not in out.replace(" ", "").replace("-", "").replace(".", ""), (
            text,
            out,
        )
