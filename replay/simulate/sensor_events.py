"""Injected sensor events: anomalies (spike, level_shift, drift, stuck, dropout) and threshold episodes.

About one anomaly per sensor per two days and one threshold episode per thresholded sensor per four
days, split evenly over the types; a run with ≥ 10 sensors still gets at least ``min(2, n // 10)`` of
each anomaly type and ``min(2, n // 5)`` threshold episodes so short runs exercise every detector.
Events on one sensor never overlap (5 min apart at least). Magnitudes are multiples of the metric's
noise σ (spike 10–20 σ, level shift 6–12 σ, drift reaching 10–20 σ). A spike window is half a
reporting interval around one scheduled reading, so it hits exactly that reading.
"""

from __future__ import annotations

__all__ = ["SensorEvent", "schedule_events", "ANOMALY_TYPES"]

from dataclasses import dataclass

import numpy as np

from replay.simulate.sensor_kinds import KINDS

ANOMALY_TYPES = ("spike", "level_shift", "drift", "stuck", "dropout")
_MIN = 60_000
#: duration range (minutes) per anomaly type and per thresholded kind
_DURATION = {"level_shift": (30, 180), "drift": (60, 240), "stuck": (30, 180), "dropout": (15, 120),
             "billboard_tilt": (5, 15), "manhole_cover": (5, 60), "drainage_level": (30, 120),
             "gas": (5, 30), "site_noise": (10, 45)}
_GAP = 5 * _MIN


@dataclass
class SensorEvent:
    """One injected event on sensor ``sensor`` over ``[start, end]`` (epoch ms, inclusive).

    ``magnitude`` is in the metric's unit: the spike/shift size, the drift reached at ``end``, or for a
    ``threshold`` episode the level forced (above the limit; for noise, the excess over it).
    ``stuck_value`` is filled in when the first stuck reading is produced.
    """

    sensor: int
    type: str
    metric: str | None
    start: int
    end: int
    magnitude: float | None = None
    stuck_value: float | None = None


class _Calendar:
    """Per-sensor booked windows over ``[start, end)``, kept ``_GAP`` apart."""

    def __init__(self, rng: np.random.Generator, kinds: list[str], start: int, end: int) -> None:
        self.rng, self.kinds, self.start, self.end = rng, kinds, start, end
        self.busy: dict[int, list[tuple[int, int]]] = {}

    def book(self, s: int, a: int, b: int) -> tuple[int, int] | None:
        if a < self.start or b >= self.end:
            return None
        if any(a < e + _GAP and b + _GAP > x for x, e in self.busy.get(s, [])):
            return None
        self.busy.setdefault(s, []).append((a, b))
        return a, b

    def place(self, s: int, lo_min: float, hi_min: float) -> tuple[int, int] | None:
        """A free window of a random duration in ``[lo_min, hi_min]`` minutes (≤ 40% of the run)."""
        dur = int(min(self.rng.uniform(lo_min, hi_min) * _MIN, 0.4 * (self.end - self.start)))
        lo, hi = self.start + 5 * _MIN, self.end - dur - _MIN
        if dur < 3 * KINDS[self.kinds[s]].interval_s * 1000 or hi <= lo:
            return None
        a = int(self.rng.integers(lo, hi))
        return self.book(s, a, a + dur)


def schedule_events(rng: np.random.Generator, kinds: list[str], phase_ms: np.ndarray, start: int,
                    end: int) -> list[SensorEvent]:
    """Draw the events of sensors with ``kinds`` (and reading phases) over ``[start, end)``.

    Example
    -------
    >>> ev = schedule_events(np.random.default_rng(0), ["gas"] * 20, np.zeros(20, np.int64), 0, 3 * 3_600_000)
    >>> sorted({e.type for e in ev})
    ['drift', 'dropout', 'level_shift', 'spike', 'stuck', 'threshold']
    """
    n = len(kinds)
    hours = (end - start) / 3_600_000
    cal = _Calendar(rng, kinds, start, end)
    events: list[SensorEvent] = []
    for typ in ANOMALY_TYPES:
        count = max(int(rng.poisson(n * hours / 48 / len(ANOMALY_TYPES))), min(2, n // 10))
        for _ in range(count):
            for _attempt in range(20):
                s = int(rng.integers(n))
                ev = _anomaly(rng, cal, typ, s, int(phase_ms[s]))
                if ev is not None:
                    events.append(ev)
                    break
    capable = [s for s in range(n) if KINDS[kinds[s]].threshold_metric is not None]
    by_kind = sorted({kinds[s] for s in capable})
    count = max(int(rng.poisson(len(capable) * hours / 96)), min(2, len(capable) // 5)) if capable else 0
    for c in range(count):
        pool = [s for s in capable if kinds[s] == by_kind[c % len(by_kind)]]
        for _attempt in range(20):
            s = pool[int(rng.integers(len(pool)))]
            win = cal.place(s, *_DURATION[kinds[s]])
            if win is not None:
                events.append(SensorEvent(s, "threshold", KINDS[kinds[s]].threshold_metric, *win,
                                          _threshold_level(rng, kinds[s])))
                break
    events.sort(key=lambda e: (e.start, e.sensor))
    return events


def _anomaly(rng: np.random.Generator, cal: _Calendar, typ: str, s: int, phase: int) -> SensorEvent | None:
    spec = KINDS[cal.kinds[s]]
    metrics = [m for m in spec.metrics if m.name != "cover_open"]
    m = metrics[int(rng.integers(len(metrics)))]
    sign = -1.0 if m.two_sided and rng.random() < 0.5 else 1.0
    step = spec.interval_s * 1000
    if typ == "spike":  # half an interval around one scheduled reading
        k = int(rng.integers(0, max(1, (cal.end - cal.start - phase) // step)))
        centre = cal.start + phase + k * step
        win = cal.book(s, centre - step // 4, centre + step // 4)
        return None if win is None else SensorEvent(s, "spike", m.name, *win, sign * rng.uniform(10, 20) * m.noise)
    win = cal.place(s, *_DURATION[typ])
    if win is None:
        return None
    if typ == "dropout":
        return SensorEvent(s, "dropout", None, *win)
    mag = {"level_shift": (6, 12), "drift": (10, 20), "stuck": None}[typ]
    return SensorEvent(s, typ, m.name, *win, None if mag is None else sign * rng.uniform(*mag) * m.noise)


def _threshold_level(rng: np.random.Generator, kind: str) -> float:
    lo, hi = {"billboard_tilt": (5.5, 9.0), "manhole_cover": (1.0, 1.0), "drainage_level": (1.35, 1.9),
              "gas": (25.0, 60.0), "site_noise": (2.0, 10.0)}[kind]
    return float(rng.uniform(lo, hi)) if hi > lo else lo
