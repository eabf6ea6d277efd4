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

_TESTS = ("point", "cusum", "stuck")


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

    def __init__(self, span: int = 60, k: float = 0.5, horizon: float = 20160.0, warmup: int = 30,
                 bins: int = 0, utc_offset_ms: int = SHANGHAI_OFFSET_MS, seed: int | None = None) -> None:
        self.span, self.k, self.horizon, self.warmup, self.bins = span, k, horizon, warmup, bins
        self.utc_offset_ms, self.seed = utc_offset_ms, seed
        self.metrics: dict[str, MetricState] = {}
        self.gaps = IntervalModel()
        self.n = 0

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        return {}

    @property
    def expected_interval_s(self) -> float:
        """The learned reporting interval in seconds (0 until two readings were seen)."""
        return self.gaps.interval_ms / 1000

    def log10_pvalues(self, x: dict[str, Any]) -> dict[str, float]:
        """``log10`` of the smallest tail probability per test (``point``, ``cusum``, ``stuck``, ``gap``)."""
        out = dict.fromkeys((*_TESTS, "gap"), 0.0)
        if self.n < self.warmup:
            return out
        ms = ts_ms(x)
        h = local_hour(ms, self.utc_offset_ms)
        for name, v in _values(x).items():
            m = self.metrics.get(name)
            if m is not None:
                for test, lp in m.log10_p(v, h).items():
                    out[test] = min(out[test], lp)
        out["gap"] = self.gaps.log10_p(ms)
        return out

    def pvalues(self, x: dict[str, Any]) -> dict[str, float]:
        """Smallest tail probability per test for reading ``x`` (see :meth:`log10_pvalues`)."""
        return {k: 10.0**v for k, v in self.log10_pvalues(x).items()}

    def explain_one(self, x: dict[str, Any]) -> str:
        """The metric of ``x`` with the smallest tail probability (\"\" when none is known yet)."""
        h = local_hour(ts_ms(x), self.utc_offset_ms)
        best, name = 1.0, ""
        for metric, v in _values(x).items():
            m = self.metrics.get(metric)
            if m is not None:
                lp = min(m.log10_p(v, h).values())
                if lp < best or not name:
                    best, name = lp, metric
        return name

    def score_one(self, x: dict[str, Any]) -> float:
        """Anomaly score of ``x`` in [0, 1] before learning it; ``x`` is not modified."""
        lp = min(self.log10_pvalues(x).values())
        return score_of(lp, 3 * max(1, len(self.metrics)) + 1, self.horizon)

    def learn_one(self, x: dict[str, Any]) -> None:
        """Learn reading ``x``."""
        ms = ts_ms(x)
        h = local_hour(ms, self.utc_offset_ms)
        interval_s = self.gaps.interval_ms / 1000
        for name, v in _values(x).items():
            m = self.metrics.get(name)
            if m is None:
                m = self.metrics[name] = MetricState(self.span, self.k, self.bins)
            m.learn(v, h, interval_s)
        self.gaps.learn(ms)
        self.n += 1
