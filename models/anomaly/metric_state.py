"""Online state of one metric of one sensor; three tests, each reporting ``log10`` of a tail probability.

A reading ``x`` at local hour ``h`` is compared with the prediction ``level + profile(h)``: ``level`` is a
slow exponentially weighted mean of the de-seasonalised value and ``profile`` a daily cycle of ``bins``
buckets (linear between bucket centres), learned over days. Every test's statistic is calibrated by its own
:class:`~models.anomaly.calibration.TailModel`, so its p-value means the same on every stream:

* **point** (spikes, the onset of shifts): ``min(|z|, |zd|)``, the robust z of the residual *and* of the step
  from the previous reading; the reading after a spike (a large step back to normal) is not flagged again.
* **cusum** (level shifts, drifts): two-sided CUSUM of the residual's z (capped at ±4) with allowance ``k``.
* **stuck**: a run of identical readings longer than this sensor's longest recent run ``ref``; each further
  repeat has the learned repeat probability ``q``, so ``p = q ** (run - ref)``.

Learning is Huber-clipped at 3 σ: a fault moves the level, the profile and the scales by a bounded step, so
it is not absorbed at once, while a lasting genuine change is learned within about ``span`` readings.
"""

from __future__ import annotations

__all__ = ["MetricState"]

import math
from array import array

from models.anomaly.calibration import TailModel

_MAD_TO_SIGMA = 1.2533  # E|e| = sigma * sqrt(2/pi) for a Gaussian
_CLIP = 3.0  # Huber clipping of what is learned, in sigmas
_ZCAP = 4.0  # a single reading moves the CUSUM by at most this
_STUCK_MIN_CHANGES = 20  # value changes seen before a run can be called stuck
_REL_FLOOR = 0.02  # scales are at least this share of the metric's overall spread (noise-free series)
_CUSUM_RESET = 8.0  # log10 p of a CUSUM detection, after which it restarts
_GROW = 1.5  # the clip grows by this per further reading clipped on the same side (a lasting change)


class MetricState:
    """State of one metric of one sensor (about 60 numbers; pickles in ~1.5 KB).

    Parameters
    ----------
    span
        Span (readings) of the slow level.
    k
        CUSUM allowance in standard deviations.
    bins
        Buckets of the daily profile; 0: one per reporting interval, between 24 and 288 (chosen when the
        interval is first known).
    day_gain
        How much one day of readings moves a profile bucket towards them.

    Example
    -------
    >>> m = MetricState()
    >>> for i in range(300):
    ...     m.learn(10.0 + (0.1 if i % 2 else -0.1) + 0.01 * (i % 7), 12.0, 60.0)
    >>> m.log10_p(10.05, 12.0)["point"] > -2, m.log10_p(14.0, 12.0)["point"] < -9
    (True, True)
    """

    __slots__ = ("span", "k", "bins", "day_gain", "n", "level", "profile", "mad", "imad", "rho", "prev",
                 "prev_e", "cpos", "cneg", "run", "ref", "q", "changes", "streak", "mean", "spread", "t_point",
                 "t_cusum")

    def __init__(self, span: int = 60, k: float = 0.5, bins: int = 0, day_gain: float = 0.3) -> None:
        self.span, self.k, self.bins, self.day_gain = span, k, bins, day_gain
        self.n = 0
        self.level = 0.0
        self.profile = array("d", [0.0] * bins)
        self.mad = 0.0  # EW mean |residual|
        self.imad = 0.0  # EW mean |innovation|
        self.rho = 0.0  # lag-1 autocorrelation of residuals
        self.prev = math.nan
        self.prev_e = 0.0
        self.cpos = self.cneg = 0.0
        self.run = 1  # identical readings in a row, the current one included
        self.ref = 1.0  # longest recent run (decays slowly)
        self.q = 0.1  # rate of repeats
        self.changes = 0
        self.streak = 0  # readings in a row clipped on the same side (signed)
        self.mean = 0.0  # long-run mean and mean absolute deviation of the raw values
        self.spread = 0.0
        self.t_point = TailModel(min_scale=0.25)
        self.t_cusum = TailModel(min_scale=0.5)

    def _floor(self) -> float:
        return 1e-9 + 1e-6 * abs(self.level) + _REL_FLOOR * self.spread

    def _where(self, h: float) -> tuple[int, int, float]:
        n = len(self.profile)
        u = h * n / 24.0 - 0.5
        i = math.floor(u)
        return i % n, (i + 1) % n, u - i

    def _season(self, h: float) -> float:
        if not self.profile:
            return 0.0
        i, j, f = self._where(h)
        return (1.0 - f) * self.profile[i] + f * self.profile[j]

    def _stats(self, x: float, h: float) -> tuple[float, float, float, float, float]:
        """Residual, innovation, the innovation's capped z, the point statistic and the CUSUM maximum."""
        e = x - self._season(h) - self.level
        u = e - self.rho * self.prev_e  # one-step forecast error: AR(1)-whitened residual
        z = e / max(self.mad * _MAD_TO_SIGMA, self._floor())
        zi = u / max(self.imad * _MAD_TO_SIGMA, self._floor())
        zc = max(-_ZCAP, min(_ZCAP, zi))
        cusum = max(self.cpos + zc - self.k, self.cneg - zc - self.k, 0.0)
        return e, u, zc, min(abs(z), abs(zi)), cusum

    def _stuck(self) -> bool:
        return self.changes >= _STUCK_MIN_CHANGES and self.run > self.ref

    def log10_p(self, x: float, h: float) -> dict[str, float]:
        """``log10`` of each test's tail probability for reading ``x`` at hour ``h`` (0 while warming up)."""
        if self.n < 2:
            return {"point": 0.0, "cusum": 0.0, "stuck": 0.0}
        _, _, _, point, cusum = self._stats(x, h)
        stuck = 0.0
        if x == self.prev and self.changes >= _STUCK_MIN_CHANGES and self.run + 1 > self.ref:
            stuck = (self.run + 1 - self.ref) * math.log10(self.q)
        return {"point": self.t_point.log10_p(point), "cusum": self.t_cusum.log10_p(cusum), "stuck": stuck}

    def learn(self, x: float, h: float, interval_s: float) -> None:
        """Update with reading ``x`` at hour ``h``; ``interval_s`` (the sensor's interval) paces the profile.

        While the value is stuck the scales and the repeat rate are frozen: a frozen sensor must not teach
        the detector that the metric never moves.
        """
        if self.n == 0:
            self.level, self.prev, self.n = x, x, 1
            return
        e, u, zc, point, cusum = self._stats(x, h)
        if self.n >= 2:
            self.t_point.learn(point)
            if self.t_cusum.log10_p(cusum) < -_CUSUM_RESET:  # a detected change: restart the CUSUM
                self.cpos = self.cneg = 0.0
            else:
                self.cpos = max(0.0, self.cpos + zc - self.k)
                self.cneg = max(0.0, self.cneg - zc - self.k)
            self.t_cusum.learn(cusum)
        same = x == self.prev
        stuck = same and self._stuck()
        warm = self.n < 10
        lim = _CLIP * max(self.mad * _MAD_TO_SIGMA, self._floor())
        if e > lim:
            self.streak = self.streak + 1 if self.streak > 0 else 1
        elif e < -lim:
            self.streak = self.streak - 1 if self.streak < 0 else -1
        else:
            self.streak = 0
        lim *= _GROW ** max(0, abs(self.streak) - 1)
        ec = e if warm else max(-lim, min(lim, e))
        ilim = _CLIP * max(self.imad * _MAD_TO_SIGMA, self._floor())
        uc = u if warm else max(-ilim, min(ilim, u))
        b = max(0.002, 1.0 / self.n)
        self.mean += b * (x - self.mean)
        self.spread += b * (abs(x - self.mean) - self.spread)
        if not stuck and abs(self.streak) <= 1:
            b = max(0.02, 1.0 / self.n)  # scales: fast at first, then about 50 readings
            self.mad += b * (abs(ec) - self.mad)
            self.imad += b * (abs(uc) - self.imad)
            if self.mad > 0:
                r = max(-1.0, min(1.0, ec * self.prev_e / (self.mad * self.mad * _MAD_TO_SIGMA**2)))
                self.rho += 0.01 * (r - self.rho)
                self.rho = max(0.0, min(0.95, self.rho))
        a = max(2.0 / (self.span + 1), 1.0 / (self.n + 1))
        self.level += a * ec
        if interval_s > 0:
            if not self.profile:
                n = self.bins or min(288, max(24, round(86_400.0 / interval_s)))
                self.profile = array("d", [0.0] * n)
            # a bucket averages its first days equally, then forgets at ``day_gain`` per day
            day_gain = max(self.day_gain, 1.0 / (1.0 + self.n * interval_s / 86_400.0))
            g = min(1.0, day_gain * interval_s * len(self.profile) / 86_400.0)
            i, j, f = self._where(h)
            self.profile[i] += g * (1.0 - f) * (1.0 - a) * ec
            self.profile[j] += g * f * (1.0 - a) * ec
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
