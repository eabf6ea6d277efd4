"""Pure replay scheduling: when to send each recorded message, plus looping and a pacer.

No Kafka here: the producer loop (elsewhere) iterates :func:`schedule`, waits with a
:class:`Pacer`, and sends each message with its key and its event time as the Kafka timestamp.
"""

from __future__ import annotations

__all__ = ["Pacer", "loop_shift", "schedule", "shift_value_ts"]

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from replay.recording import RecordedMessage

# date, separator, HH:MM[:SS], optional fraction, optional offset (kept verbatim: a shift never
# changes the offset, so wall-clock arithmetic on the local time is exact)
_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2})([T ])(\d{2}:\d{2})(:\d{2})?(?:[.,](\d{1,9}))?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def _shift_iso(s: str, delta: timedelta) -> str:
    m = _ISO.fullmatch(s)
    if m is None:
        return s
    date, sep, hm, sec, frac, off = m.groups()
    try:
        dt = datetime.fromisoformat(f"{date}T{hm}{sec or ':00'}") + delta
    except ValueError:
        return s
    us = int((frac or "0")[:6].ljust(6, "0"))
    dt += timedelta(microseconds=us)
    out = dt.strftime("%Y-%m-%d") + sep + dt.strftime("%H:%M")
    digits = len(frac or "")
    if dt.microsecond and (digits == 0 or dt.microsecond % 10 ** (6 - min(digits, 6)) != 0):
        digits = 3 if dt.microsecond % 1000 == 0 else 6  # the shift added precision the text lacked
    if sec or digits or dt.second:
        out += dt.strftime(":%S")
    if digits:
        out += "." + f"{dt.microsecond:06d}"[: min(digits, 6)].ljust(digits, "0")
    return out + (off or "")


def _shift_ts(x: Any, delta_ms: int) -> Any:
    if isinstance(x, bool):
        return x
    if isinstance(x, int | float):
        return x + delta_ms
    if isinstance(x, str):
        return _shift_iso(x, timedelta(milliseconds=delta_ms))
    return x


def _shift_fix(obj: Any, delta_ms: int) -> None:
    if isinstance(obj, dict) and "ts" in obj:
        obj["ts"] = _shift_ts(obj["ts"], delta_ms)


def shift_value_ts(value: bytes, delta_ms: int) -> bytes:
    """Shift the event times inside a JSON value by ``delta_ms``, keeping each one's representation.

    Rewrites the top-level ``ts``, each ``fixes[*].ts`` of a batch and each item's ``ts`` of a bare
    array. ISO strings stay ISO with the same offset text; numbers stay numbers. Values that do not
    decode as JSON come back unchanged, as does everything when ``delta_ms`` is 0.

    Example
    -------
    >>> shift_value_ts(b'{"ts":"2020-12-21T07:59:30+08:00","lat":24.5}', 45_000)
    b'{"ts":"2020-12-21T08:00:15+08:00","lat":24.5}'
    >>> shift_value_ts(b'{"fixes":[{"ts":1000},{"ts":"2026-01-01T00:00:00Z"}]}', 1)
    b'{"fixes":[{"ts":1001},{"ts":"2026-01-01T00:00:00.001Z"}]}'
    >>> shift_value_ts(b'\\xff not json', 5)
    b'\\xff not json'
    """
    if delta_ms == 0:
        return value
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if isinstance(obj, dict):
        _shift_fix(obj, delta_ms)
        fixes = obj.get("fixes")
        for fix in fixes if isinstance(fixes, list) else ():
            _shift_fix(fix, delta_ms)
    elif isinstance(obj, list):
        for fix in obj:
            _shift_fix(fix, delta_ms)
    else:
        return value
    return orjson.dumps(obj)


def loop_shift(first_ts: int, last_ts: int, count: int) -> int:
    """Event-time shift between two loops: the span plus one mean inter-arrival interval.

    A single message (or a zero span) has no interval; one second is used then.

    Example
    -------
    >>> loop_shift(0, 9_000, 10)   # 10 messages one second apart: loop 2 starts at 10 s
    10000
    >>> loop_shift(5_000, 5_000, 1)
    1000
    """
    span = last_ts - first_ts
    if count < 2 or span <= 0:
        return span + 1000
    return span + -(-span // (count - 1))  # ceil: the shift is never shorter than the mean gap


def schedule(
    messages: Iterable[RecordedMessage],
    speed: float | None,
    *,
    loop_count: int | None = 1,
    loop_shift_ms: int | None = None,
) -> Iterator[tuple[float, RecordedMessage]]:
    """Yield ``(seconds after replay start at which to send, message)`` for a replay.

    Offsets preserve the recorded inter-arrival times divided by ``speed`` (60 = 60x real time);
    ``speed=None`` sends as fast as possible (offset always 0.0). Offsets never decrease: a message
    whose event time is earlier than one already sent goes immediately. Loop ``i`` (from 0) shifts
    event times by ``i * loop_shift_ms`` (default :func:`loop_shift` of the first pass), in
    ``RecordedMessage.ts`` and inside the value (:func:`shift_value_ts`); keys stay the same.
    ``loop_count=None`` loops forever. Looping needs a re-iterable ``messages`` (a list, or
    ``Recording.merged()``), never a one-shot iterator.

    Example
    -------
    >>> msgs = [RecordedMessage("bike_gps", "B1", t, b'{"ts":%d}' % t) for t in (0, 60_000)]
    >>> [(o, m.ts, m.value) for o, m in schedule(msgs, 60, loop_count=2)]
    [(0.0, 0, b'{"ts":0}'), (1.0, 60000, b'{"ts":60000}'),
     (2.0, 120000, b'{"ts":120000}'), (3.0, 180000, b'{"ts":180000}')]
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0 or None, got {speed!r}")
    if loop_count is not None and loop_count < 0:
        raise ValueError(f"loop_count must be >= 0 or None, got {loop_count!r}")
    if (loop_count is None or loop_count > 1) and iter(messages) is messages:
        raise TypeError(
            "looping replays the messages again: pass a list or Recording.merged(), "
            "not a one-shot iterator"
        )
    base: int | None = None
    last_off = 0.0
    shift = loop_shift_ms
    i = 0
    while loop_count is None or i < loop_count:
        delta = 0 if i == 0 else i * shift  # type: ignore[operator]
        lo = hi = n = 0
        for m in messages:
            if delta:
                m = replace(m, ts=m.ts + delta, value=shift_value_ts(m.value, delta))
            if base is None:
                base = m.ts
            if speed is not None:
                last_off = max(last_off, (m.ts - base) / 1000.0 / speed)
            if i == 0:
                lo, hi = (m.ts, m.ts) if n == 0 else (min(lo, m.ts), max(hi, m.ts))
                n += 1
            yield last_off, m
        if i == 0:
            if n == 0:
                return
            if shift is None:
                shift = loop_shift(lo, hi, n)
        i += 1


class Pacer:
    """Wait until a replay offset on an injected monotonic clock (fake clocks make tests instant).

    The clock starts at the first wait (or :meth:`start`). Each wait returns how far behind
    schedule the caller already was (seconds, >= 0), a useful lag figure for metrics.

    Example
    -------
    >>> now = [100.0]
    >>> p = Pacer(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    >>> p.sleep_until(0.0), p.sleep_until(2.5), now[0]
    (0.0, 0.0, 102.5)
    >>> now[0] += 1.0
    >>> p.sleep_until(3.0)
    0.5
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.async_sleep = async_sleep
        self._t0: float | None = None

    def start(self) -> None:
        """Set replay time zero to now."""
        self._t0 = self.clock()

    def _delay(self, offset_s: float) -> float:
        if self._t0 is None:
            self.start()
        return self._t0 + offset_s - self.clock()  # type: ignore[operator]

    def sleep_until(self, offset_s: float) -> float:
        """Block until ``offset_s`` seconds after the start; return the lateness."""
        delay = self._delay(offset_s)
        if delay > 0:
            self.sleep(delay)
        return max(0.0, -delay)

    async def wait_until(self, offset_s: float) -> float:
        """Await until ``offset_s`` seconds after the start; return the lateness."""
        delay = self._delay(offset_s)
        if delay > 0:
            await self.async_sleep(delay)
        return max(0.0, -delay)
