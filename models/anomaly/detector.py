"""The chosen per-sensor detector: calibrated online tests per metric plus a dropout test, in river's API.

See ``docs/anomaly.md`` for the comparison that chose it.
"""

from __future__ import annotations

__all__ = ["SensorDetector"]

import math
from typing import Any

from river import base

from models.anomaly.calibration import score_of
from models.anomaly.interval import IntervalModel
from models.anomaly.metric_state import MetricState
from models.anomaly.timebase import SHANGHAI_OFFSET_MS, local_hour, ts_ms

_TESTS = ("point", "cusum", "drift", "stuck")
_SETTLE_DECADES = 2.0


def _values(x: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in x.items()
            if k != "ts" and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


class SensorDetector(base.AnomalyDetector):
    """Scores readings of one sensor in [0, 1]; river's ``learn_one``/``score_one`` API.

    ``x`` holds ``"ts"`` (aware datetime or epoch ms) and one or more numeric metrics (univariate:
    ``"value"``). Every metric gets a :class:`~models.anomaly.metric_state.MetricState` (point, CUSUM and
    stuck tests); an :class:`~models.anomaly.interval.IntervalModel` learns the reporting interval and tests
    the gap before each reading (dropouts). Each test's p-value comes from the stream's own tail of that
    statistic; the smallest, Bonferroni-corrected by the number of tests, becomes ``exp(-horizon * p)``: the
    probability that ``horizon`` normal readings show nothing as extreme. A score of 0.9 therefore means the
    same on every stream: "rarer than about once in ten ``horizon``-reading periods".

    Parameters
    ----------
    span
        Span (readings) of each metric's slow level.
    k
        CUSUM allowance (standard deviations).
    horizon
        Readings the calibration refers to (20160 = 14 days of one-minute readings).
    warmup
        Readings learned before any score above 0.
    settle_days
        For this long after the first reading the baseline tests' p-values count 100 times larger (the
        daily profile is still unknown).
    bins
        Buckets of the daily profile (local time of ``utc_offset_ms``); 0: one per reporting interval,
        between 24 and 288.
    utc_offset_ms
        Local time of the daily profile (Asia/Shanghai by default).
    seed
        Accepted for the common interface; this detector is deterministic without randomness.

    Example
    -------
    >>> d = SensorDetector()
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

    def __init__(self, span: float = 300, k: float = 0.5, horizon: float = 20160.0, warmup: int = 30,
                 bins: int = 0, settle_days: float = 1.0, utc_offset_ms: int = SHANGHAI_OFFSET_MS,
                 seed: int | None = None) -> None:
        self.span, self.k, self.horizon, self.warmup, self.bins = span, k, horizon, warmup, bins
        self.settle_days, self.utc_offset_ms, self.seed = settle_days, utc_offset_ms, seed
        self.first_ms: int | None = None
        self.metrics: dict[str, MetricState] = {}
        self.gaps = IntervalModel()
        self.n = 0
        self._memo: tuple[Any, ...] | None = None  # the last score_one's work, reused by learn_one

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_memo": None}  # the memo is a cache: not state

    @property
    def expected_interval_s(self) -> float:
        """The learned reporting interval in seconds (0 until two readings were seen)."""
        return self.gaps.interval_ms / 1000

    def _evaluate(self, x: dict[str, Any]) -> tuple[Any, ...]:
        """``(key, ms, hour, {metric: (value, evaluation)}, damp)`` of ``x``; memoised for ``learn_one``."""
        ms = ts_ms(x)
        vals = _values(x)
        key = (ms, tuple(vals.items()))
        memo = self._memo
        if memo is not None and memo[0] == key:
            return memo
        h = local_hour(ms, self.utc_offset_ms)
        evs = {}
        for name, v in vals.items():
            m = self.metrics.get(name)
            evs[name] = (v, m.evaluate(v, h) if m is not None else None)
        # while the daily profile is unknown, the baseline tests are damped: a first working day looks new
        damp = _SETTLE_DECADES if self.first_ms is not None and ms - self.first_ms < self.settle_days * 86_400_000 else 0.0
        self._memo = (key, ms, h, evs, damp)
        return self._memo

    def log10_pvalues(self, x: dict[str, Any]) -> dict[str, float]:
        """``log10`` of the smallest tail probability per test over the metrics of ``x`` (``point``,
        ``cusum``, ``drift``, ``stuck``) and of the gap before it (``gap``); all 0 while warming up."""
        out = dict.fromkeys((*_TESTS, "gap"), 0.0)
        if self.n < self.warmup:
            return out
        _, ms, _, evs, damp = self._evaluate(x)
        for _, ev in evs.values():
            if ev is not None:
                out["point"] = min(out["point"], ev[5] + damp)
                out["cusum"] = min(out["cusum"], ev[6] + damp)
                out["drift"] = min(out["drift"], ev[7] + damp)
                out["stuck"] = min(out["stuck"], ev[8])
        out = {k: min(0.0, v) for k, v in out.items()}
        out["gap"] = self.gaps.log10_p(ms)
        return out

    def pvalues(self, x: dict[str, Any]) -> dict[str, float]:
        """Smallest tail probability per test for reading ``x`` (see :meth:`log10_pvalues`)."""
        return {k: 10.0**v for k, v in self.log10_pvalues(x).items()}

    def explain_one(self, x: dict[str, Any]) -> str:
        """The metric of ``x`` with the smallest tail probability (\"\" when none is known yet)."""
        best, name = 1.0, ""
        for metric, (_, ev) in self._evaluate(x)[3].items():
            if ev is not None:
                lp = min(ev[5:])
                if lp < best or not name:
                    best, name = lp, metric
        return name

    def score_one(self, x: dict[Any, Any]) -> float:
        """Anomaly score of ``x`` in [0, 1] before learning it; ``x`` is not modified."""
        if self.n < self.warmup:
            return 0.0
        _, ms, _, evs, damp = self._evaluate(x)
        lp = self.gaps.log10_p(ms)
        for _, ev in evs.values():
            if ev is not None:
                lp = min(lp, ev[5] + damp, ev[6] + damp, ev[7] + damp, ev[8])
        return score_of(lp, len(_TESTS) * max(1, len(self.metrics)) + 1, self.horizon)

    def learn_one(self, x: dict[Any, Any]) -> None:
        """Learn reading ``x``."""
        _, ms, h, evs, _ = self._evaluate(x)
        self._memo = None
        interval_s = self.gaps.interval_ms / 1000
        for name, (v, ev) in evs.items():
            m = self.metrics.get(name)
            if m is None:
                m = self.metrics[name] = MetricState(self.span, self.k, self.bins)
            m.learn(v, h, interval_s, ev)
        self.gaps.learn(ms)
        if self.first_ms is None:
            self.first_ms = ms
        self.n += 1
