"""Detectors built on river's anomaly and forecasting modules, kept for the comparison in ``docs/anomaly.md``.

Same interface as :class:`~models.anomaly.detector.SensorDetector`, and the same calibration: the raw score
goes through a :class:`~models.anomaly.calibration.TailModel` and ``exp(-horizon * p)``, so a threshold means
the same thing for every candidate and only the raw scorer differs. ``model`` is one of:

* ``hst``: ``anomaly.HalfSpaceTrees`` on min-max scaled values and steps from the previous reading;
* ``sad``: ``anomaly.StandardAbsoluteDeviation`` per metric (``stats.Mean``), the largest;
* ``gaussian``: ``anomaly.GaussianScorer`` on the residual of a ``stats.EWMean`` forecast, per metric;
* ``holt_winters``: ``time_series.HoltWinters`` (daily season in readings once the interval is known) and
  ``snarimax``: ``time_series.SNARIMAX(2, 1, 1)``: the absolute one-step forecast error over its running
  mean, as ``anomaly.PredictiveAnomalyDetection`` does (PAD itself updates its statistics in
  ``score_one``, which breaks the score-before-learn contract, so the forecaster is used directly).

``anomaly.LocalOutlierFactor`` was tried and left out: it keeps every reading (unbounded memory) and took
~4 ms per reading after 1,000 readings on this machine.
"""

from __future__ import annotations

__all__ = ["RiverCandidate", "MODELS"]

import math
from typing import Any

from river import anomaly, base, compose, preprocessing, stats, time_series

from models.anomaly.calibration import TailModel, score_of
from models.anomaly.interval import IntervalModel
from models.anomaly.timebase import ts_ms

MODELS = ("hst", "sad", "gaussian", "holt_winters", "snarimax")


def _values(x: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(x.items())
            if k != "ts" and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


class RiverCandidate(base.AnomalyDetector):
    """A river scorer per sensor with :class:`SensorDetector`'s calibration.

    Example
    -------
    >>> d = RiverCandidate("sad")
    >>> for i in range(300):
    ...     d.learn_one({"ts": 60_000 * i, "value": 20.0 + 0.3 * math.sin(i)})
    >>> d.score_one({"ts": 18_000_000, "value": 20.1}) < 0.5, d.score_one({"ts": 18_000_000, "value": 35.0}) > 0.9
    (True, True)
    """

    def __init__(self, model: str = "hst", horizon: float = 20160.0, warmup: int = 30, seed: int | None = None) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}, expected one of {MODELS}")
        self.model, self.horizon, self.warmup, self.seed = model, horizon, warmup, seed
        self.gaps = IntervalModel()
        self.tail = TailModel(min_scale=1e-6)
        self.state: dict[str, Any] = {}
        self.prev: dict[str, float] = {}
        self.hst: Any = None
        if model == "hst":
            self.hst = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(
                n_trees=10, height=8, window_size=250, seed=seed))
        self.n = 0

    @property
    def expected_interval_s(self) -> float:
        """The learned reporting interval in seconds."""
        return self.gaps.interval_ms / 1000

    def _features(self, vals: dict[str, float]) -> dict[str, float]:
        return {**vals, **{f"{k}_step": v - self.prev.get(k, v) for k, v in vals.items()}}

    def _new(self, name: str) -> Any:
        if self.model == "sad":
            return anomaly.StandardAbsoluteDeviation(sub_stat=stats.Mean())
        if self.model == "gaussian":
            return (stats.EWMean(fading_factor=0.1), anomaly.GaussianScorer(window_size=500, grace_period=20))
        interval = self.gaps.interval_ms / 1000
        if self.model == "holt_winters":
            season = round(86_400 / interval) if 0 < interval and 86_400 / interval <= 1440 else 0
            fc: Any = time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.3 if season else None,
                                              seasonality=season)
        else:
            fc = time_series.SNARIMAX(p=2, d=1, q=1)
        return [fc, stats.EWMean(fading_factor=0.02), 0]

    def _raw_metric(self, name: str, v: float) -> float:
        st = self.state.get(name)
        if st is None:
            return 0.0
        try:
            if self.model == "sad":
                return float(st.score_one(None, v))
            if self.model == "gaussian":
                return float(st[1].score_one(None, v - st[0].get()))
        except (TypeError, ValueError, ZeroDivisionError):  # river's scorers on constant input
            return 0.0
        fc, mae, n = st
        if n < 10:
            return 0.0
        try:
            err = abs(v - fc.forecast(1)[0])
        except (IndexError, ZeroDivisionError, ValueError):  # HoltWinters forecasts after one season
            return 0.0
        return err / max(mae.get(), 1e-9)

    def _raw(self, x: dict[str, Any]) -> float:
        vals = _values(x)
        if self.hst is not None:
            return float(self.hst.score_one(self._features(vals))) if self.n else 0.0
        return max((self._raw_metric(k, v) for k, v in vals.items()), default=0.0)

    def score_one(self, x: dict[Any, Any]) -> float:
        """Calibrated score of ``x`` in [0, 1] before learning it."""
        if self.n < self.warmup:
            return 0.0
        return score_of(self.tail.log10_p(self._raw(x)), 1, self.horizon)

    def learn_one(self, x: dict[Any, Any]) -> None:
        """Learn reading ``x``."""
        raw = self._raw(x)
        if self.n >= 5:
            self.tail.learn(raw)
        vals = _values(x)
        if self.hst is not None:
            self.hst.learn_one(self._features(vals))
        else:
            for k, v in vals.items():
                st: Any = self.state.get(k)
                if st is None and self.model in ("sad", "gaussian"):
                    st = self.state[k] = self._new(k)
                if self.model == "sad":
                    st.learn_one(None, v)
                elif self.model == "gaussian":
                    st[1].learn_one(None, v - st[0].get())
                    st[0].update(v)
                elif st is None:
                    if self.gaps.interval_ms > 0:  # forecasters need the interval for their season
                        self.state[k] = self._new(k)
                else:
                    fc, mae, n = st
                    if n >= 10:
                        try:
                            mae.update(abs(v - fc.forecast(1)[0]))
                        except (IndexError, ZeroDivisionError):
                            pass
                    try:
                        fc.learn_one(v)
                    except ZeroDivisionError:  # multiplicative start of HoltWinters on zeros
                        continue
                    st[2] = n + 1
        self.prev = vals
        self.gaps.learn(ts_ms(x))
        self.n += 1
