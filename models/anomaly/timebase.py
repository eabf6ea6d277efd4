"""Event time of a detector input: ``x["ts"]`` as epoch ms, and the local hour of day for daily profiles."""

from __future__ import annotations

__all__ = ["ts_ms", "local_hour", "SHANGHAI_OFFSET_MS"]

from datetime import datetime
from typing import Any

#: Asia/Shanghai is UTC+8 all year (no daylight saving): a fixed offset is exact.
SHANGHAI_OFFSET_MS = 8 * 3_600_000


def ts_ms(x: dict[str, Any]) -> int:
    """Epoch ms of ``x["ts"]`` (an aware datetime or an epoch-ms int).

    Example
    -------
    >>> from datetime import UTC
    >>> ts_ms({"ts": datetime(2026, 11, 21, 7, tzinfo=UTC)}), ts_ms({"ts": 1795244400000})
    (1795244400000, 1795244400000)
    """
    ts = x["ts"]
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError("naive datetime: the detector needs an aware timestamp")
        return int(ts.timestamp() * 1000)
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return int(ts)
    raise ValueError(f"ts must be an aware datetime or epoch ms, got {type(ts).__name__}")


def local_hour(ms: int, offset_ms: int = SHANGHAI_OFFSET_MS) -> float:
    """Fractional hour of day in [0, 24) at ``ms`` in the zone ``offset_ms`` east of UTC.

    Example
    -------
    >>> local_hour(1795244400000), local_hour(1795244400000 + 1_800_000)  # 07:00Z is 15:00 in Xiamen
    (15.0, 15.5)
    """
    return ((ms + offset_ms) % 86_400_000) / 3_600_000
