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
        A run of values with a p-value below ``10^-skip`` is learned as one value at that p-value.

    Example
    -------
    >>> import random
    >>> rng = random.Random(1)
    >>> t = TailModel()
    >>> for _ in range(5000):
    ...     t.learn(rng.expovariate(1.0))
    >>> round(t.log10_p(math.log(100)), 1), round(t.log10_p(math.log(10_000)), 1)  # true: -2 and -4
    (-2.0, -4.0)
    """

    __slots__ = ("level", "min_scale", "grace", "skip", "n", "u", "mean", "beta", "exceed", "hot")

    def __init__(self, level: float = 0.95, min_scale: float = 0.0, grace: int = 20, skip: float = 4.0) -> None:
        self.level, self.min_scale, self.grace, self.skip = level, min_scale, grace, skip
        self.n = 0
        self.u = 0.0  # the level-quantile (stochastic approximation)
        self.mean = 0.0  # EW mean of the statistic: the step size of the quantile's updates
        self.beta = 0.0  # EW mean excess over u: the exponential tail's scale
        self.exceed = 0
        self.hot = False

    def log10_p(self, s: float) -> float:
        """``log10 P(S >= s)`` (0 while fewer than ``grace`` values were learned)."""
        if self.n < self.grace:
            return 0.0
        u = self.u
        base = math.log10(1.0 - self.level)
        if s <= u:
            return base * s / u if u > 0 else 0.0
        beta = max(self.beta, self.min_scale, 1e-12)
        return base - (s - u) / (beta * LN10)

    def learn(self, s: float) -> None:
        """Learn one value. A run of values with ``p < 10^-skip`` is learned as one value at that p-value
        (a fault must not teach the tail that faults are normal, yet a recurring pattern is learned), and
        excesses count at most 5 ``beta``."""
        if self.n >= self.grace and self.log10_p(s) < -self.skip:
            if self.hot:  # one value per run of extreme values: a long fault is one event
                return
            self.hot = True
            s = self.u + (self.skip + math.log10(1.0 - self.level)) * max(self.beta, self.min_scale, 1e-12) * LN10
        else:
            self.hot = False
        self.n += 1
        if self.n == 1:
            self.u = self.mean = s
            return
        if s > self.u:
            ex = s - self.u
            if self.exceed >= 10:
                ex = min(ex, 5.0 * max(self.beta, self.min_scale))
            self.exceed += 1
            self.beta += max(0.02, 1.0 / self.exceed) * (ex - self.beta)
        self.mean += max(0.01, 1.0 / self.n) * (s - self.mean)
        rate = max(0.01, 1.0 / self.n) * (self.mean + self.min_scale)
        self.u = max(0.0, self.u + rate * ((self.level if s > self.u else self.level - 1.0) / (1.0 - self.level)))


def score_of(log10_p: float, tests: int, horizon: float) -> float:
    """Score in [0, 1] of the smallest ``log10_p`` of ``tests`` tests: ``exp(-horizon * tests * p)``.

    Example
    -------
    >>> round(score_of(-6.0, 4, 20160.0), 3), round(score_of(-3.0, 4, 20160.0), 3)
    (0.923, 0.0)
    """
    return math.exp(-horizon * min(1.0, tests * 10.0 ** log10_p))
