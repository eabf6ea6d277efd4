"""Event-time parsing: every record carries an aware UTC timestamp; inside the pipeline it is epoch ms."""

from __future__ import annotations

__all__ = ["parse_ts_ms", "ms_to_iso", "MIN_TS_MS", "MAX_TS_MS"]

from datetime import UTC, datetime, timedelta

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
