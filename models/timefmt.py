"""Event-time parsing: every record carries an aware UTC timestamp; inside the pipeline it is epoch ms."""

from __future__ import annotations

__all__ = ["parse_ts_ms", "ms_to_iso", "clock_ahead", "message_limit", "message_limits", "MIN_TS_MS", "MAX_TS_MS"]

from datetime import UTC, datetime, timedelta

import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

#: Plausibility bounds for event times: 2000-01-01 .. 2100-01-01 (UTC). Outside means a unit error
#: (seconds sent as milliseconds, or microseconds) rather than a real reading.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000


def parse_ts_ms(value: object) -> int:
    """Parse an event timestamp into epoch milliseconds (UTC).

    Accepts an integer of epoch milliseconds or an ISO-8601 string with an explicit offset.
    Raises ``ValueError`` with a reason for naive strings, wrong types and implausible values.

    Example
    -------
    >>> parse_ts_ms("2026-11-21T07:00:05Z")
    1795244405000
    >>> parse_ts_ms("2026-11-21T15:00:05+08:00")
    1795244405000
    >>> parse_ts_ms(1795244405000)
    1795244405000
    >>> parse_ts_ms("2026-11-21T07:00:05")
    Traceback (most recent call last):
    ...
    ValueError: naive timestamp (no UTC offset): '2026-11-21T07:00:05'
    """
    if isinstance(value, bool):
        raise ValueError(f"timestamp must be ISO-8601 or epoch ms, got bool {value!r}")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, float) and value.is_integer():
        ms = int(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"unparsable timestamp: {value[:40]!r}") from None
        if dt.tzinfo is None:
            raise ValueError(f"naive timestamp (no UTC offset): {value[:40]!r}")
        ms = (dt - _EPOCH) // _MS  # exact integer arithmetic, no float rounding
    else:
        raise ValueError(f"timestamp must be ISO-8601 or epoch ms, got {type(value).__name__}")
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise ValueError(f"timestamp out of range (epoch ms expected): {ms}")
    return ms


def ms_to_iso(ms: int) -> str:
    """Epoch milliseconds to an ISO-8601 UTC string.

    Example
    -------
    >>> ms_to_iso(1795244405000)
    '2026-11-21T07:00:05+00:00'
    """
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def clock_ahead(ts: int, latest: int | None) -> str | None:
    """Why an event dated ``ts`` cannot be taken (its source's clock runs ahead), or None when it can:
    ``latest`` is the newest time its message allows (the Kafka timestamp plus the allowed clock skew; None:
    no limit). One such event would move its partition's event time, and so every key's, into the future.

    Example
    -------
    >>> clock_ahead(1795244400000, 1795244400000) is None
    True
    >>> clock_ahead(1795248000000, 1795244700000)[:55]
    'dated 2026-11-21T08:00:00+00:00, 3300 s after the newes'
    """
    if latest is None or ts <= latest:
        return None
    return (f"dated {ms_to_iso(ts)}, {(ts - latest) / 1000:.0f} s after the newest time its message allows "
            f"({ms_to_iso(latest)}: the message timestamp plus the allowed clock skew)")


def message_limit(timestamp_ms: float | None, skew_s: float | None) -> int | None:
    """The newest event time a message stamped ``timestamp_ms`` may carry: its timestamp plus ``skew_s``; None
    (no limit) when the check is off or the message has no timestamp (negative, as Kafka's -1).

    Example
    -------
    >>> message_limit(1795244400000.0, 300), message_limit(-1, 300), message_limit(1795244400000, None)
    (1795244700000, None, None)
    """
    if skew_s is None or timestamp_ms is None or timestamp_ms < 0:
        return None
    return int(timestamp_ms) + int(skew_s * 1000)


def message_limits(timestamps_ms: np.ndarray, skew_s: float | None) -> np.ndarray | None:
    """:func:`message_limit` of many messages at once (int64; no timestamp: the int64 maximum, no limit);
    None when the check is off.

    Example
    -------
    >>> message_limits(np.array([1795244400000, -1]), 300).tolist()
    [1795244700000, 9223372036854775807]
    """
    if skew_s is None:
        return None
    return np.where(timestamps_ms >= 0, timestamps_ms + int(skew_s * 1000), np.iinfo(np.int64).max)
