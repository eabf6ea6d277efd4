"""The detector of the city's sensor kinds: robust online statistics per metric with Gaussian (parametric)
tails, a learned reporting interval, and a score scaled by a horizon. Chosen for the sensor kinds on the
simulator's injected anomalies; unknown streams (``generic``) get the calibrated :class:`SensorDetector`
(``docs/anomaly.md`` has the comparison)."""

from __future__ import annotations

__all__ = ["ParametricDetector"]

import math
from typing import Any

from river import base

from models.anomaly.parametric_state import ParametricState
from models.anomaly.timebase import SHANGHAI_OFFSET_MS, local_hour, ts_ms

_TESTS = ("point", "cusum", "stuck")


class ParametricDetector(base.AnomalyDetector):
    """Scores readings of one sensor in [0, 1]; river's ``learn_one``/``score_one`` API.

    ``x`` holds ``"ts"`` (aware datetime or epoch ms) and one or more numeric metrics (univariate:
    ``"value"``). Every metric gets a :class:`~models.anomaly.parametric_state.ParametricState`; the time since the
    previous reading, compared with the learned interval, tests for dropouts. The smallest tail probability
    ``p`` of all tests (Bonferroni-corrected by their number) is calibrated as ``exp(-horizon * p)``: the
    probability that ``horizon`` normal readings show nothing as extreme. A score of 0.9 therefore means the
    same on every stream: "rarer than once in about ten ``horizon``-reading periods".

    Parameters
    ----------
    span
        Span (readings) of the slow level of each metric.
    k
        CUSUM allowance (standard deviations).
    horizon
        Readings the calibration refers to (20160 = 14 days of one-minute readings).
    warmup
        Readings learned before any score above 0.
    gap_rate
        How fast the dropout p-value falls per interval beyond 1.5 expected intervals.
    utc_offset_ms
        Local time of the daily profile (Asia/Shanghai by default).
    seed
        Accepted for the common interface; this detector is deterministic without randomness.

    Example
    -------
    >>> d = ParametricDetector()
    >>> for i in range(300):
    ...     d.learn_one({"ts": 60_000 * i, "value": 20.0 + 0.3 * math.sin(i)})
    >>> d.score_one({"ts": 60_000 * 300, "value": 20.1}) < 0.1
    True
    >>> d.score_one({"ts": 60_000 * 300, "value": 35.0}) > 0.99
    True
    >>> round(d.expected_interval_s)
    60
    >>> d.score_one({"ts": 60_000 * 330, "value": 20.1}) > 0.99  # half an hour of silence
    True
    """

    __slots__ = ("metrics", "n", "last_ms", "interval_ms", "span", "k", "horizon", "warmup", "gap_rate",
                 "utc_offset_ms", "seed", "last_score")

    def __init__(self, span: int = 60, k: float = 1.0, horizon: float = 20160.0, warmup: int = 20,
                 gap_rate: float = 3.0, utc_offset_ms: int = SHANGHAI_OFFSET_MS, seed: int | None = None) -> None:
        self.span, self.k, self.horizon, self.warmup = span, k, horizon, warmup
        self.gap_rate, self.utc_offset_ms, self.seed = gap_rate, utc_offset_ms, seed
        self.metrics: dict[str, ParametricState] = {}
        self.n = 0
        self.last_ms: int | None = None
        self.interval_ms = 0.0
        self.last_score = 0.0

    @property
    def expected_interval_s(self) -> float:
        """The learned reporting interval in seconds (0 until two readings were seen)."""
        return self.interval_ms / 1000

    def _values(self, x: dict[str, Any]) -> dict[str, float]:
        out = {}
        for name, v in x.items():
            if name != "ts" and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[name] = float(v)
        return out

    def pvalues(self, x: dict[str, Any]) -> dict[str, float]:
        """Smallest tail probability per test (``point``, ``cusum``, ``stuck``, ``gap``) for reading ``x``."""
        ms = ts_ms(x)
        out = dict.fromkeys((*_TESTS, "gap"), 1.0)
        if self.n < self.warmup:
            return out
        h = local_hour(ms, self.utc_offset_ms)
        for name, v in self._values(x).items():
            m = self.metrics.get(name)
            if m is not None:
                for test, p in m.pvalues(v, h).items():
                    out[test] = min(out[test], p)
        if self.last_ms is not None and self.interval_ms > 0:
            g = (ms - self.last_ms) / self.interval_ms
            if g > 1.5:
                out["gap"] = math.exp(-self.gap_rate * (g - 1.5))
        return out

    def explain_one(self, x: dict[str, Any]) -> str:
        """The metric of ``x`` with the smallest tail probability (\"\" when none is known yet)."""
        h = local_hour(ts_ms(x), self.utc_offset_ms)
        best, name = 1.0, ""
        for metric, v in self._values(x).items():
            m = self.metrics.get(metric)
            p = min(m.pvalues(v, h).values()) if m is not None else 1.0
            if m is not None and (p < best or not name):
                best, name = p, metric
        return name

    def score_one(self, x: dict[Any, Any]) -> float:
        """Anomaly score of ``x`` in [0, 1] before learning it; ``x`` is not modified."""
        p = min(self.pvalues(x).values())
        n_tests = 3 * max(1, len(self.metrics)) + 1
        return math.exp(-self.horizon * min(1.0, p * n_tests))

    def learn_one(self, x: dict[Any, Any]) -> None:
        """Learn reading ``x`` (see :meth:`ParametricState.learn`)."""
        ms = ts_ms(x)
        anomalous = self.score_one(x) > 0.5
        if self.last_ms is not None and ms > self.last_ms:
            dt = ms - self.last_ms
            if self.interval_ms == 0:
                self.interval_ms = float(dt)
            elif dt < 3 * self.interval_ms:  # gaps are not learned as the normal interval
                self.interval_ms += max(0.02, 1 / (self.n + 1)) * (dt - self.interval_ms)
        h = local_hour(ms, self.utc_offset_ms)
        for name, v in self._values(x).items():
            m = self.metrics.get(name)
            if m is None:
                m = self.metrics[name] = ParametricState(self.span, self.k)
            m.learn(v, h, anomalous)
        self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
        self.n += 1

    def __getstate__(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for s, v in state.items():
            setattr(self, s, v)
