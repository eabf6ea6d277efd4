"""Keep reporters' phone numbers out of ClickHouse and logs.

Choice: a *keyed* hash, HMAC-SHA256 with a secret key handed in by the caller (the settings object
holds it; this module never reads the environment). A plain SHA-256 of a phone number is no
protection: China's mobile numbers are only ~10⁹-10¹⁰ values, so an unkeyed hash table of all of them
is built in minutes. With the key kept out of the database, the stored token still lets the centre
count repeat reporters and join their cases, but not recover the number. Tokens are the first
``length`` hex digits (default 16 = 64 bits: collisions are negligible at city scale) written with
the letters ``a``-``p`` for ``0``-``f`` and prefixed ``h:``, so a reader can tell a token from a
number and no token ever holds a run of digits that a scanner would take for a phone number. Numbers are normalized first (separators and a
``+86``/``0086`` country prefix dropped) so one phone gets one token however it was typed.

For display, :func:`mask_phone` keeps the operator prefix and the last four digits
(``138****5678``), the usual form on Chinese government sites; :func:`scrub_text` masks every
phone-like number (and any other run of 11+ digits, even with separators, such as an ID-card
number) inside free text.
"""

from __future__ import annotations

__all__ = ["normalize_phone", "hash_phone", "mask_phone", "scrub_text"]

import hashlib
import hmac
import re

_NON_DIGIT = re.compile(r"\D")
_HEX_AS_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
# Mobile numbers (optionally +86 / 0086, separators of space, dot or dash between digits),
# landlines with an area code (0592-1234567), and any other run of 11+ digits, separators allowed
# (ID-card numbers, a phone glued to other digits): privacy wins over keeping odd digit strings.
_PHONE_LIKE = re.compile(
    r"(?<!\d)(?:(?:\+|00)?86[\s.-]?)?1[3-9]\d(?:[\s.-]?\d){8}(?!\d)"
    r"|(?<!\d)0\d{2,3}[\s-]?\d{7,8}(?!\d)"
    r"|\d(?:[\s.-]?\d){10,}"
)


def normalize_phone(phone: str) -> str:
    """Digits only, without a +86 / 0086 country prefix.

    Example
    -------
    >>> normalize_phone("+86 138-1234-5678")
    '13812345678'
    """
    digits = _NON_DIGIT.sub("", phone)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix) :]
    return digits


def hash_phone(phone: str, key: bytes, length: int = 16) -> str:
    """``"h:"`` + the first ``length`` hex digits of HMAC-SHA256(key, normalized phone), as letters a-p.

    Example
    -------
    >>> hash_phone("13812345678", b"k1") == hash_phone("+86 138 1234 5678", b"k1")
    True
    >>> hash_phone("13812345678", b"k1") != hash_phone("13812345678", b"k2")
    True
    >>> t = hash_phone("13812345678", b"k1")
    >>> len(t), any(c.isdigit() for c in t)
    (18, False)
    """
    if not key:
        raise ValueError("hash_phone needs a non-empty secret key")
    if not 8 <= length <= 64:
        raise ValueError("length must be between 8 and 64 hex digits")
    digest = hmac.new(key, normalize_phone(phone).encode(), hashlib.sha256).hexdigest()
    return "h:" + digest[:length].translate(_HEX_AS_LETTERS)


def mask_phone(phone: str) -> str:
    """Mask the middle of a number: first 3 and last 4 digits kept when 11+ digits long, else
    only the last 2 (short numbers leak too much with 7 digits shown).

    Example
    -------
    >>> mask_phone("13812345678")
    '138****5678'
    >>> mask_phone("+86 138-1234-5678")
    '138****5678'
    >>> mask_phone("12345")
    '***45'
    """
    d = normalize_phone(phone)
    if len(d) >= 11:
        return d[:3] + "*" * (len(d) - 7) + d[-4:]
    return "*" * max(len(d) - 2, 0) + d[-2:]


def _mask_match(m: re.Match[str]) -> str:
    return mask_phone(m.group(0))


def scrub_text(text: str) -> str:
    """Replace every phone-like number in ``text`` by its masked form.

    Example
    -------
    >>> scrub_text("请联系 138 1234 5678 或 0592-5551234，身份证350203199001011234")
    '请联系 138****5678 或 059****1234，身份证350***********1234'
    """
    return _PHONE_LIKE.sub(_mask_match, text)
