"""Online robust statistics of one metric for :class:`~models.anomaly.parametric.ParametricDetector`, each
test reporting a tail probability (p-value) from a fixed (Gaussian) noise model.

A reading ``x`` at local hour ``h`` is compared with a prediction ``level + profile[h]``: ``level`` is a slow
exponentially weighted mean of the de-seasonalised value and ``profile`` a per-hour-of-day mean of the
deviation from it (the daily cycle, learned over days). Three tests:

* **point** (spikes, abrupt shifts): robust z of the residual *and* of the step from the previous reading;
  the smaller of the two, so the reading after a spike (a large step back to normal) is not flagged again.
* **cusum** (level shifts, drifts): two-sided CUSUM of the standardised residual with allowance ``k``.
  Residuals are autocorrelated (AR noise, slow level), so the CUSUM tail uses the long-run variance
  ``(1 + rho) / (1 - rho)`` (Siegmund: ``P(S > s) ~ exp(-2 k s / v)``).
* **stuck**: a run of ``L`` identical readings has probability ``q ** L`` where ``q`` is the learned rate
  of repeats (sensors that repeat normally, e.g. a closed manhole cover, have ``q`` near 1).

Learning is Huber-clipped (see :meth:`ParametricState.learn`): a fault is not absorbed as normal at once, but a
lasting genuine change is, so the detector never locks itself out.
"""

from __future__ import annotations

__all__ = ["ParametricState"]

import math

_SQRT2 = math.sqrt(2.0)
_MAD_TO_SIGMA = 1.2533  # E|e| = sigma * sqrt(2/pi) for a Gaussian
_CLIP = 3.0  # Huber clipping of what is learned, in sigmas
_CUSUM_CAP = 40.0


def _normal_tail2(z: float) -> float:
    """Two-sided Gaussian tail probability of ``|z|``."""
    return math.erfc(abs(z) / _SQRT2)


class ParametricState:
    """State of one metric of one sensor (about 40 floats; pickles small).

    Parameters
    ----------
    span
        Span (readings) of the slow level.
    k
        CUSUM allowance in standard deviations.
    profile_alpha
        Weight of one reading in its hour-of-day profile bucket.

    Example
    -------
    >>> m = ParametricState()
    >>> for i in range(200):
    ...     m.learn(10.0 + (0.1 if i % 2 else -0.1) + 0.01 * (i % 7), 12, False)
    >>> m.pvalues(10.05, 12)["point"] > 0.01, m.pvalues(14.0, 12)["point"] < 1e-9
    (True, True)
    """

    __slots__ = ("n", "level", "profile", "mad", "dmad", "prev", "rho", "prev_z", "cpos", "cneg", "run", "q",
                 "span", "k", "profile_alpha")

    def __init__(self, span: int = 60, k: float = 0.5, profile_alpha: float = 0.2) -> None:
        self.span, self.k, self.profile_alpha = span, k, profile_alpha
        self.n = 0
        self.level = 0.0
        self.profile = [0.0] * 24
        self.mad = 0.0     # EW mean |residual|
        self.dmad = 0.0    # EW mean |step|
        self.prev = math.nan
        self.rho = 0.0     # EW lag-1 autocorrelation of standardised residuals
        self.prev_z = 0.0
        self.cpos = self.cneg = 0.0
        self.run = 0       # identical readings in a row (after the first)
        self.q = 0.1       # rate of identical consecutive readings

    def _sigma(self) -> float:
        return max(self.mad * _MAD_TO_SIGMA, 1e-9 + 1e-3 * abs(self.level))

    def _dsigma(self) -> float:
        return max(self.dmad * _MAD_TO_SIGMA, 1e-9 + 1e-6 * abs(self.level))

    def _season(self, h: float) -> float:
        """Profile at fractional hour ``h``: linear between bucket centres (a daily cycle has no steps)."""
        u = h - 0.5
        i = int(u // 1) % 24
        f = u - (u // 1)
        return (1 - f) * self.profile[i] + f * self.profile[(i + 1) % 24]

    def _learn_season(self, h: float, delta: float) -> None:
        u = h - 0.5
        i = int(u // 1) % 24
        f = u - (u // 1)
        self.profile[i] += self.profile_alpha * (1 - f) * delta
        self.profile[(i + 1) % 24] += self.profile_alpha * f * delta

    def _z(self, x: float, h: float) -> float:
        return (x - self._season(h) - self.level) / self._sigma()

    def pvalues(self, x: float, h: float) -> dict[str, float]:
        """Tail probability of each test for reading ``x`` at hour ``h`` (1.0 while warming up)."""
        if self.n < 2:
            return {"point": 1.0, "cusum": 1.0, "stuck": 1.0}
        z = self._z(x, h)
        zd = (x - self.prev) / self._dsigma()
        p_point = max(_normal_tail2(z), _normal_tail2(zd))
        cpos, cneg = self._cusum(z)
        v = (1 + self.rho) / max(1 - self.rho, 0.05)
        p_cusum = math.exp(-2 * self.k * max(cpos, cneg) / v)
        run = self.run + 1 if x == self.prev else 0
        p_stuck = self.q ** run if run else 1.0
        return {"point": p_point, "cusum": p_cusum, "stuck": p_stuck}

    def _cusum(self, z: float) -> tuple[float, float]:
        # Capped so an old excursion (or the warm-up) is forgotten within about 2 * _CUSUM_CAP readings.
        z = max(-_CLIP * 2, min(_CLIP * 2, z))
        return (min(_CUSUM_CAP, max(0.0, self.cpos + z - self.k)),
                min(_CUSUM_CAP, max(0.0, self.cneg - z - self.k)))

    def learn(self, x: float, h: float, anomalous: bool) -> None:
        """Update with reading ``x`` at hour ``h``.

        Level, profile and scales learn Huber-clipped residuals (at ``clip`` sigmas): an outlier moves them
        by at most a bounded step, so a spike is not absorbed while a lasting change is, over about
        ``span`` readings. ``anomalous`` is accepted for interface stability and currently unused.
        """
        if self.n == 0:
            self.level, self.prev, self.n = x, x, 1
            return
        a = max(2.0 / (self.span + 1), 1.0 / (self.n + 1))
        z = self._z(x, h) if self.n >= 2 else 0.0
        self.cpos, self.cneg = self._cusum(z) if self.n >= self.span else (0.0, 0.0)
        sigma, dsigma = self._sigma(), self._dsigma()
        warm = self.n < 10
        e = x - self._season(h) - self.level
        ec = e if warm else max(-_CLIP * sigma, min(_CLIP * sigma, e))
        step = x - self.prev
        sc = step if warm else max(-_CLIP * dsigma, min(_CLIP * dsigma, step))
        b = max(0.02, 1.0 / self.n)  # scale statistics: fast at first, then about 50 readings
        self.mad += b * (abs(ec) - self.mad)
        self.dmad += b * (abs(sc) - self.dmad)
        zc = max(-5.0, min(5.0, z))
        if self.n > 3:
            self.rho += 0.01 * (max(-0.95, min(0.95, zc * self.prev_z)) - self.rho)
        self.prev_z = zc
        self.level += a * ec
        self._learn_season(h, ec - a * ec)
        same = x == self.prev
        self.run = self.run + 1 if same else 0
        self.q += max(0.002, 1.0 / (self.n + 10)) * ((1.0 if same else 0.0) - self.q)
        self.prev = x
        self.n += 1
