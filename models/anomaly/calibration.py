"""Tail probabilities of a detector statistic, learned per stream, and their map to a score in [0, 1].

:class:`TailModel` learns the ``level`` quantile ``u`` of a non-negative statistic (stochastic
approximation, forgetting over about a thousand values) and the mean excess over it, ``beta``. Above ``u`` the tail is exponential (a
generalised Pareto tail of shape 0, the peaks-over-threshold model; the mean excess is its maximum-likelihood
scale): ``P(S > s) = (1 - level) * exp(-(s - u) / beta)``. That is exact for Laplace-like tails and
conservative (too large a probability) for Gaussian ones, and it needs no assumption about the stream's
scale: a fixed p-value means about the same false-alarm rate on every stream.

:func:`score_of` maps the smallest p-value of a reading's tests to ``exp(-horizon * p * tests)``: the
probability that ``horizon`` normal readings show nothing as extreme (Bonferroni over the tests).
"""

from __future__ import annotations

__all__ = ["TailModel", "score_of", "LN10"]

import math

LN10 = math.log(10.0)
_HOT_EVERY = 10
_PRIOR = 10


class TailModel:
    """Running tail model of a non-negative statistic that forgets (about a thousand values).

    Parameters
    ----------
    level
        Quantile above which the tail is modelled as exponential.
    min_scale
        Floor of the tail scale (in the statistic's unit): how fast the p-value may fall at most.
    grace
        Values learned before any p-value below 1.
    skip
        Once ``1 / rate`` values were learned, of a run of values with a p-value below ``10^-skip`` only
        every tenth is learned, as a value at that p-value.
    rate
        Smallest weight of a new value: the model forgets over about ``1 / rate`` values.

    Example
    -------
    >>> import random
    >>> rng = random.Random(1)
    >>> t = TailModel()
    >>> for _ in range(5000):
    ...     t.learn(rng.expovariate(1.0))
    >>> [round(t.log10_p(math.log(q))) for q in (100, 10_000, 1_000_000)]  # true: -2, -4, -6
    [-2, -4, -6]
    """

    __slots__ = ("level", "min_scale", "grace", "skip", "rate", "base", "n", "u", "mean", "beta",
                 "exceed", "hot", "first")

    def __init__(self, level: float = 0.95, min_scale: float = 0.0, grace: int = 20, skip: float = 4.0,
                 rate: float = 0.01) -> None:
        self.level, self.min_scale, self.grace, self.skip, self.rate = level, min_scale, grace, skip, rate
        self.base = math.log10(1.0 - level)  # log10 p at the quantile u
        self.n = 0
        self.u = 0.0  # the level-quantile (stochastic approximation)
        self.mean = 0.0  # EW mean of the statistic
        self.beta = 0.0  # EW mean excess over u: the exponential tail's scale
        self.exceed = 0
        self.hot = 0  # length of the current run of extreme values
        self.first: list[float] | None = []

    def log10_p(self, s: float) -> float:
        """``log10 P(S >= s)`` (0 while fewer than ``grace`` values were learned)."""
        if self.n < self.grace:
            return 0.0
        u = self.u
        if s <= u:
            return self.base * s / u if u > 0 else 0.0
        beta = self.beta if self.beta > self.min_scale else self.min_scale
        return self.base - (s - u) / ((beta if beta > 1e-12 else 1e-12) * LN10)

    def learn(self, s: float, lp: float | None = None) -> None:
        """Learn one value. In a run of values with ``p < 10^-skip`` only every tenth is learned, as a value
        at that p-value: a fault must not teach the tail that faults are normal, yet a recurring pattern or
        a lasting new regime is learned. Excesses count at most 5 ``beta``. ``lp`` is ``log10_p(s)`` when
        already known."""
        if lp is None:
            lp = self.log10_p(s)
        if lp < -self.skip and self.n * self.rate >= 1.0:
            self.hot += 1
            if (self.hot - 1) % _HOT_EVERY:  # a run of extreme values teaches one value per _HOT_EVERY
                return
            s = self.u + (self.skip + self.base) * max(self.beta, self.min_scale, 1e-12) * LN10
        else:
            self.hot = 0
        self.n += 1
        if self.first is not None:  # the first ``grace`` values start the model at their empirical tail
            self.first.append(s)
            if self.n >= self.grace:
                v = sorted(self.first)
                self.u = v[min(len(v) - 1, int(self.level * len(v)))]
                self.mean = sum(v) / len(v)
                above = [x - self.u for x in v if x > self.u] or [self.u - v[len(v) // 2]]
                self.beta = sum(above) / len(above)
                self.first = None
            return
        u = self.u
        w = self.rate if self.n * self.rate > 1.0 else 1.0 / self.n
        if s > u:
            ex = s - u
            if self.exceed >= 10:
                cap = 5.0 * (self.beta if self.beta > self.min_scale else self.min_scale)
                ex = ex if ex < cap else cap
            self.exceed += 1
            # the scale starts as if _PRIOR excesses of its current value had been seen: one rare event (a
            # first dropout on a regular sensor) does not redefine the tail
            self.beta += max(2.0 * self.rate, 1.0 / (self.exceed + _PRIOR)) * (ex - self.beta)
            self.mean += w * (s - self.mean)
            self.u = u + w * (self.beta + self.min_scale) * self.level / (1.0 - self.level)
        else:
            self.mean += w * (s - self.mean)
            u -= w * (self.beta + self.min_scale)
            self.u = u if u > 0.0 else 0.0


def score_of(log10_p: float, tests: int, horizon: float) -> float:
    """Score in [0, 1] of the smallest ``log10_p`` of ``tests`` tests: ``exp(-horizon * tests * p)``.

    Example
    -------
    >>> round(score_of(-6.0, 4, 20160.0), 3), round(score_of(-3.0, 4, 20160.0), 3)
    (0.923, 0.0)
    """
    return math.exp(-horizon * min(1.0, tests * 10.0 ** log10_p))
