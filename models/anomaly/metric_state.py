"""Online state of one metric of one sensor; four tests, each reporting ``log10`` of a tail probability.

A reading ``x`` at local hour ``h`` is compared with the prediction ``level + profile(h)`` (additive
Holt-Winters with a time-of-day season): ``level`` is an exponentially weighted mean of the de-seasonalised
value over ``span`` readings, ``profile`` a daily cycle of buckets learned over days. Every test's statistic is
calibrated by its own :class:`~models.anomaly.calibration.TailModel`, so its p-value means the same on every
stream:

* **point** (spikes, the onset of shifts): the robust z of the one-step forecast error, i.e. the residual
  whitened by its lag-1 autocorrelation ``rho`` (``e - rho * e_prev``, with ``e_prev`` as learned, clipped):
  the reading after a spike is not flagged again.
* **cusum** (level shifts, drifts): two-sided leaky CUSUM (memory ~20 readings) of the residual's z (capped
  at ±4, less its slow mean: the baseline's usual bias) with allowance ``k``; it restarts after a detection
  (p < 1e-8).
* **drift**: the distance between ``level`` and a ten times slower level, in residual σ.
* **stuck**: a run of identical readings longer than this sensor's longest recent run ``ref``; each further
  repeat has the learned repeat probability ``q``, so ``p = q ** (run - ref)``.

Learning is Huber-clipped at 3 σ: a fault moves the level, the profile and the scales by a bounded step, so
it is not absorbed at once. When more than 30 readings in a row land on the same side of the clip, it widens
by half per reading: a lasting genuine change (or a daily pattern not learned yet) is absorbed instead of
locking the detector out. Scales and the repeat rate are frozen while a value is stuck.
"""

from __future__ import annotations

__all__ = ["MetricState"]

import math
from array import array

from models.anomaly.calibration import TailModel

_MAD_TO_SIGMA = 1.2533  # E|e| = sigma * sqrt(2/pi) for a Gaussian
_CLIP = 3.0  # Huber clipping of what is learned, in sigmas
_GROW = 1.5  # the clip grows by this per further reading clipped on the same side (a lasting change)
_GROW_AFTER = 30  # ... once this many readings in a row were clipped on that side
_ZCAP = 4.0  # a single reading moves the CUSUM by at most this
_CUSUM_RESET = -8.0  # log10 p of a CUSUM detection, after which it restarts
_LEAK = 0.95  # the CUSUM forgets over about 20 readings: hours-long baseline errors do not pile up
_WARM = 20  # readings before the tests' statistics are learned (the scales settle first)
_STUCK_MIN_CHANGES = 20  # value changes seen before a run can be called stuck
_REL_FLOOR = 0.02  # scales are at least this share of the metric's overall spread (noise-free series)
_SCALE_RATE = 0.01  # scales forget over about 100 readings
_ZMEAN_RATE = 0.002  # the residual's usual bias is learned over about 500 readings
_LN10 = math.log(10.0)

#: The result of :meth:`MetricState.evaluate`.
Evaluation = tuple[float, float, float, float, float, float, float, float, float]


class MetricState:
    """State of one metric of one sensor (about 60 numbers and the profile; ~3.5 KB pickled).

    Parameters
    ----------
    span
        Span of the level: readings, or hours when negative (``-12``: twelve hours of readings at the
        learned interval).
    k
        CUSUM allowance in standard deviations.
    bins
        Buckets of the daily profile; 0: one per reporting interval, between 24 and 288 (chosen when the
        interval is first known).
    day_gain
        How much one day of readings moves a profile bucket towards them (after the first days, which are
        averaged equally).

    Example
    -------
    >>> m = MetricState()
    >>> for i in range(300):
    ...     m.learn(10.0 + (0.1 if i % 2 else -0.1) + 0.01 * (i % 7), 12.0, 60.0)
    >>> m.log10_p(10.05, 12.0)["point"] > -2, m.log10_p(14.0, 12.0)["point"] < -9
    (True, True)
    """

    __slots__ = ("span", "k", "bins", "day_gain", "n", "level", "slow", "profile", "mad", "imad", "rho", "prev",
                 "prev_e", "cpos", "cneg", "streak", "mean", "spread", "run", "ref", "q", "changes", "zmean",
                 "t_point", "t_cusum", "t_drift")

    def __init__(self, span: float = 300, k: float = 0.5, bins: int = 0, day_gain: float = 0.3) -> None:
        self.span, self.k, self.bins, self.day_gain = span, k, bins, day_gain
        self.n = 0
        self.level = 0.0
        self.slow = 0.0  # a level ten times slower: drifts separate the two
        self.profile = array("d")
        self.mad = 0.0  # EW mean |residual|
        self.imad = 0.0  # EW mean |one-step forecast error|
        self.rho = 0.0  # lag-1 autocorrelation of residuals
        self.prev = math.nan
        self.prev_e = 0.0
        self.cpos = self.cneg = 0.0
        self.zmean = 0.0  # slow mean of the residual's z: the CUSUM watches departures from the usual bias
        self.streak = 0  # readings in a row clipped on the same side (signed)
        self.mean = 0.0  # long-run mean and mean absolute deviation of the raw values
        self.spread = 0.0
        self.run = 1  # identical readings in a row, the current one included
        self.ref = 1.0  # longest recent run (decays slowly)
        self.q = 0.1  # rate of repeats
        self.changes = 0
        self.t_point = TailModel(min_scale=0.25)
        self.t_cusum = TailModel(min_scale=0.5)
        self.t_drift = TailModel(min_scale=0.1, rate=0.002)

    def _floor(self) -> float:
        return 1e-9 + 1e-6 * abs(self.level) + _REL_FLOOR * self.spread

    def _where(self, h: float) -> tuple[int, int, float]:
        n = len(self.profile)
        u = h * n / 24.0  # bucket k is centred on k * 24 / n hours: on-the-grid readings hit one bucket
        i = math.floor(u)
        return i % n, (i + 1) % n, u - i

    def _season(self, h: float) -> float:
        if not self.profile:
            return 0.0
        i, j, f = self._where(h)
        return (1.0 - f) * self.profile[i] + f * self.profile[j]

    def _drift(self) -> float:
        return abs(self.level - self.slow) / max(self.mad * _MAD_TO_SIGMA, self._floor())

    def evaluate(self, x: float, h: float) -> Evaluation:
        """Statistics and ``log10`` p-values of reading ``x`` at hour ``h``, before learning it:
        ``(e, u, zc, point, cusum, lp_point, lp_cusum, lp_drift, lp_stuck)``."""
        floor = self._floor()
        e = x - self._season(h) - self.level
        u = e - self.rho * self.prev_e  # one-step forecast error: AR(1)-whitened residual
        zi = u / max(self.imad * _MAD_TO_SIGMA, floor)
        zc = e / max(self.mad * _MAD_TO_SIGMA, floor)
        zc = (_ZCAP if zc > _ZCAP else -_ZCAP if zc < -_ZCAP else zc) - self.zmean
        cusum = max(_LEAK * self.cpos + zc - self.k, _LEAK * self.cneg - zc - self.k, 0.0)
        point = abs(zi)
        if self.n < _WARM:
            return e, u, zc, point, cusum, 0.0, 0.0, 0.0, 0.0
        stuck = 0.0
        if x == self.prev and self.changes >= _STUCK_MIN_CHANGES and self.run + 1 > self.ref:
            stuck = (self.run + 1 - self.ref) * math.log10(self.q)
        return (e, u, zc, point, cusum, self.t_point.log10_p(point), self.t_cusum.log10_p(cusum),
                self.t_drift.log10_p(self._drift()), stuck)

    def log10_p(self, x: float, h: float) -> dict[str, float]:
        """``log10`` of each test's tail probability for reading ``x`` at hour ``h`` (0 while warming up)."""
        ev = self.evaluate(x, h)
        return {"point": ev[5], "cusum": ev[6], "drift": ev[7], "stuck": ev[8]}

    def learn(self, x: float, h: float, interval_s: float, ev: Evaluation | None = None) -> None:
        """Update with reading ``x`` at hour ``h`` (``ev``: its :meth:`evaluate`, when already computed);
        ``interval_s``, the sensor's reporting interval, paces the profile."""
        if self.n == 0:
            self.level = self.slow = self.prev = self.mean = x
            self.n = 1
            return
        e, u, zc, point, cusum, lp_point, lp_cusum, _, _ = ev if ev is not None else self.evaluate(x, h)
        if self.n >= _WARM:
            self.t_point.learn(point, lp_point)
            if lp_cusum < _CUSUM_RESET:  # a detected change: restart the CUSUM
                self.cpos = self.cneg = 0.0
            else:
                self.cpos = max(0.0, _LEAK * self.cpos + zc - self.k)
                self.cneg = max(0.0, _LEAK * self.cneg - zc - self.k)
            self.t_cusum.learn(cusum, lp_cusum)
            self.zmean += _ZMEAN_RATE * zc
        same = x == self.prev
        stuck = same and self.changes >= _STUCK_MIN_CHANGES and self.run > self.ref
        floor = self._floor()
        lim = _CLIP * max(self.mad * _MAD_TO_SIGMA, floor)
        if e > lim:
            self.streak = self.streak + 1 if self.streak > 0 else 1
        elif e < -lim:
            self.streak = self.streak - 1 if self.streak < 0 else -1
        else:
            self.streak = 0
        warm = self.n < 10
        if self.streak > _GROW_AFTER or self.streak < -_GROW_AFTER:
            lim *= _GROW ** (abs(self.streak) - _GROW_AFTER)
        ec = e if warm else max(-lim, min(lim, e))
        ilim = _CLIP * max(self.imad * _MAD_TO_SIGMA, floor)
        uc = u if warm else max(-ilim, min(ilim, u))
        b = max(0.002, 1.0 / self.n)
        self.mean += b * (x - self.mean)
        self.spread += b * (abs(x - self.mean) - self.spread)
        if not stuck and -1 <= self.streak <= 1:
            b = max(_SCALE_RATE, 1.0 / self.n)  # scales: fast at first, then about 100 readings
            self.mad += b * (abs(ec) - self.mad)
            self.imad += b * (abs(uc) - self.imad)
            if self.mad > 0:
                r = ec * self.prev_e / (self.mad * self.mad * _MAD_TO_SIGMA**2)
                self.rho += 0.01 * (max(-1.0, min(1.0, r)) - self.rho)
                self.rho = max(0.0, min(0.95, self.rho))
        span = self.span if self.span > 0 or interval_s <= 0 else -self.span * 3600.0 / interval_s
        a = max(2.0 / (span + 1), 1.0 / (self.n + 1))
        self.level += a * ec
        self.slow += max(0.2 / (span + 1), 1.0 / (self.n + 1)) * (self.level - self.slow)
        if self.n >= _WARM:
            self.t_drift.learn(self._drift())
        if interval_s > 0:
            if not self.profile:
                self.profile = array("d", [0.0] * (self.bins or min(288, max(24, round(86_400.0 / interval_s)))))
            # a bucket averages its first days equally, then forgets at ``day_gain`` per day
            day_gain = max(self.day_gain, 1.0 / (1.0 + self.n * interval_s / 86_400.0))
            g = min(1.0, day_gain * interval_s * len(self.profile) / 86_400.0) * (1.0 - a) * ec
            i, j, f = self._where(h)
            self.profile[i] += (1.0 - f) * g
            self.profile[j] += f * g
        self.prev_e = ec - a * ec
        if same:
            self.run += 1
        else:
            self.changes += 1
            self.ref = max(float(self.run), self.ref * 0.995)
            self.run = 1
        if not stuck:
            self.q += max(0.002, 1.0 / (self.n + 10)) * ((1.0 if same else 0.0) - self.q)
            self.q = min(0.99, max(0.01, self.q))
        self.prev = x
        self.n += 1
