"""The reporting interval of a sensor, and how unusual the gap before a reading is (dropouts).

The expected interval is an exponentially weighted mean of the gaps between readings, where a gap longer
than three expected intervals (a dropout) is not learned. The gap test is the tail probability of
``log(gap / expected)`` under the sensor's own distribution of it (:class:`TailModel`), with a tail scale of
at least ``min_scale``: on a perfectly regular sensor a gap of 2 intervals has ``p ~ 10^-2.8``, 5 intervals
``10^-4.8``; on a sensor with irregular reporting the same gaps are ordinary.
"""

from __future__ import annotations

__all__ = ["IntervalModel"]

import math

from models.anomaly.calibration import TailModel


class IntervalModel:
    """Expected interval (ms) between readings and the gap test.

    Example
    -------
    >>> m = IntervalModel()
    >>> for i in range(100):
    ...     m.learn(60_000 * i)
    >>> m.interval_ms, m.log10_p(60_000 * 100), m.log10_p(60_000 * 105) < -4  # on time; five intervals late
    (60000.0, 0.0, True)
    """

    __slots__ = ("min_scale", "last_ms", "interval_ms", "n", "tail")

    def __init__(self, min_scale: float = 0.15) -> None:
        self.min_scale = min_scale
        self.last_ms: int | None = None
        self.interval_ms = 0.0
        self.n = 0
        self.tail = TailModel(min_scale=min_scale)

    def _stat(self, ms: int) -> float | None:
        if self.last_ms is None or self.interval_ms <= 0 or ms <= self.last_ms:
            return None
        return max(0.0, math.log((ms - self.last_ms) / self.interval_ms))

    def log10_p(self, ms: int) -> float:
        """``log10`` of the tail probability of the gap before a reading at ``ms`` (0 when unknown)."""
        s = self._stat(ms)
        return 0.0 if s is None else self.tail.log10_p(s)

    def learn(self, ms: int) -> None:
        """Learn a reading at ``ms`` (readings not after the last one leave the interval alone)."""
        s = self._stat(ms)
        if s is not None:
            self.tail.learn(s)
        if self.last_ms is not None and ms > self.last_ms:
            dt = ms - self.last_ms
            if self.interval_ms == 0:
                self.interval_ms = float(dt)
            elif dt < 3 * self.interval_ms:  # a dropout is not the normal interval
                self.n += 1
                self.interval_ms += max(0.02, 1.0 / (self.n + 1)) * (dt - self.interval_ms)
        self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
