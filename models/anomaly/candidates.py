"""Alternative detectors built on river, kept for the comparison in ``docs/anomaly.md`` (same interface).

* :class:`RiverHST`: ``river.anomaly.HalfSpaceTrees`` on the min-max scaled value, the step from the
  previous value and the time since it (scaled by the learned interval).
* :class:`RiverGaussian`: ``river.anomaly.GaussianScorer`` on the residual of a Holt-Winters-free
  exponentially weighted mean forecast (``river.stats.EWMean``).

Both raw scores go through :class:`TailCalibrator`, a running tail probability (a fixed-bin histogram of
past raw scores), so 0.9 means "higher than 90% of what this stream scored so far".
"""

from __future__ import annotations

__all__ = ["RiverHST", "RiverGaussian", "TailCalibrator"]

import math
from typing import Any

from river import anomaly, preprocessing, stats

from models.anomaly.timebase import ts_ms


class TailCalibrator:
    """Running empirical CDF of raw scores in [0, 1] over ``bins`` bins.

    Example
    -------
    >>> c = TailCalibrator()
    >>> for i in range(100):
    ...     c.learn(i / 100)
    >>> round(c.score(0.95), 2)  # share of past scores in lower bins
    0.94
    """

    def __init__(self, bins: int = 50) -> None:
        self.counts = [0] * bins
        self.total = 0

    def _bin(self, raw: float) -> int:
        return min(len(self.counts) - 1, max(0, int(raw * len(self.counts))))

    def score(self, raw: float) -> float:
        if self.total < 10:
            return 0.0
        return sum(self.counts[: self._bin(raw)]) / self.total

    def learn(self, raw: float) -> None:
        self.counts[self._bin(raw)] += 1
        self.total += 1


def _values(x: dict[str, Any]) -> list[float]:
    return [float(v) for k, v in sorted(x.items()) if k != "ts" and isinstance(v, int | float) and math.isfinite(v)]


class RiverHST:
    """HalfSpaceTrees over scaled value, step and gap, calibrated by :class:`TailCalibrator`."""

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42) -> None:
        self.n_trees, self.height, self.window_size, self.seed = n_trees, height, window_size, seed
        self.scaler = preprocessing.MinMaxScaler()
        self.hst = anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size, seed=seed)
        self.calib = TailCalibrator()
        self.prev: list[float] | None = None
        self.last_ms: int | None = None
        self.interval = stats.EWMean(fading_factor=0.05)

    @property
    def expected_interval_s(self) -> float:
        return float(self.interval.get() or 0.0) / 1000

    def _features(self, x: dict[str, Any]) -> dict[str, float]:
        vals, ms = _values(x), ts_ms(x)
        feats = {f"v{i}": v for i, v in enumerate(vals)}
        if self.prev is not None:
            feats |= {f"d{i}": v - p for i, (v, p) in enumerate(zip(vals, self.prev, strict=False))}
        if self.last_ms is not None and self.interval.get():
            feats["gap"] = min(10.0, (ms - self.last_ms) / self.interval.get())
        return feats

    def _raw(self, x: dict[str, Any]) -> float:
        feats = self._features(x)
        return self.hst.score_one({k: min(1.0, max(0.0, v)) for k, v in self.scaler.transform_one(feats).items()})

    def score_one(self, x: dict[str, Any]) -> float:
        return self.calib.score(self._raw(x))

    def learn_one(self, x: dict[str, Any]) -> None:
        raw = self._raw(x)
        self.calib.learn(raw)
        feats = self._features(x)
        self.scaler.learn_one(feats)
        self.hst.learn_one({k: min(1.0, max(0.0, v)) for k, v in self.scaler.transform_one(feats).items()})
        ms = ts_ms(x)
        if self.last_ms is not None and ms > self.last_ms:
            self.interval.update(ms - self.last_ms)
        self.prev, self.last_ms = _values(x), ms


class RiverGaussian:
    """GaussianScorer on the residual of an EW mean forecast, calibrated by :class:`TailCalibrator`."""

    def __init__(self, window_size: int = 500, fading_factor: float = 0.1, seed: int | None = None) -> None:
        self.window_size, self.fading_factor, self.seed = window_size, fading_factor, seed
        self.forecast = stats.EWMean(fading_factor=fading_factor)
        self.scorer = anomaly.GaussianScorer(window_size=window_size, grace_period=20)
        self.calib = TailCalibrator()
        self.last_ms: int | None = None
        self.interval = stats.EWMean(fading_factor=0.05)

    @property
    def expected_interval_s(self) -> float:
        return float(self.interval.get() or 0.0) / 1000

    def _raw(self, x: dict[str, Any]) -> float:
        vals = _values(x)
        if not vals or self.last_ms is None:
            return 0.0
        return float(self.scorer.score_one(None, vals[0] - self.forecast.get()))

    def score_one(self, x: dict[str, Any]) -> float:
        return self.calib.score(self._raw(x))

    def learn_one(self, x: dict[str, Any]) -> None:
        vals = _values(x)
        if not vals:
            return
        self.calib.learn(self._raw(x))
        if self.last_ms is not None:
            self.scorer.learn_one(None, vals[0] - self.forecast.get())
        self.forecast.update(vals[0])
        ms = ts_ms(x)
        if self.last_ms is not None and ms > self.last_ms:
            self.interval.update(ms - self.last_ms)
        self.last_ms = ms

