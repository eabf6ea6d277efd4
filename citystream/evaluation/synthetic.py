"""Synthetic univariate sensor streams with injected anomalies, for detector evaluation.

Independent of the replay simulator on purpose (different shapes, noise and rates), so a detector tuned on
one is checked on the other. Each sensor draws: a reporting interval (30 s, 1 min or 5 min, with up to
±10 % jitter), a level, a daily cycle in Asia/Shanghai time (none, a sine, or a working-hours step) of 0–8
noise σ, AR(1) noise (φ in [0, 0.8], Gaussian or Student-t with 4 degrees of freedom), and a resolution
(values rounded to 0.05–0.5 σ, so repeats happen). After ``warmup_days`` every sensor gets one anomaly
every ``every_h`` hours on average, the types in turn:

* ``spike``: one reading off by 6–12 σ (either sign);
* ``level_shift``: +/- 4–8 σ for 1–3 h;
* ``drift``: a ramp reaching 6–12 σ over 2–4 h, then back;
* ``stuck``: the value frozen for 1–3 h;
* ``dropout``: no readings for 30–120 min (and at least 10 intervals).
"""

from __future__ import annotations

__all__ = ["synthetic_streams", "TYPES"]

from typing import Any

import numpy as np

TYPES = ("spike", "level_shift", "drift", "stuck", "dropout")
_H = 3_600_000
_T0 = 1_793_577_600_000  # 2026-11-02T00:00Z


def _sensor(rng: np.random.Generator, sid: str, days: float, warmup_days: float, every_h: float,
            first_type: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    interval = int(rng.choice([30_000, 60_000, 300_000]))
    jitter = float(rng.choice([0.0, 0.1]))
    n = int(days * 86_400_000 / interval)
    ts = _T0 + interval * np.arange(n) + (rng.uniform(-jitter, jitter, n) * interval).astype(np.int64)
    phi = rng.uniform(0.0, 0.8)
    shocks = rng.standard_t(4, n) / np.sqrt(2.0) if rng.random() < 0.3 else rng.normal(0, 1, n)
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + np.sqrt(1 - phi**2) * shocks[i]
    sigma = float(rng.uniform(0.2, 5.0))
    hour = ((ts + 8 * _H) % 86_400_000) / _H
    shape = rng.choice(["flat", "sine", "work"])
    amp = rng.uniform(0, 8) if shape != "flat" else 0.0
    cycle = np.sin(2 * np.pi * (hour - 9) / 24) if shape == "sine" else ((hour >= 8) & (hour < 18)).astype(float)
    value = 10 * sigma + rng.uniform(0, 50) + sigma * (amp * cycle + noise)
    keep = np.ones(n, bool)
    truth: list[dict[str, Any]] = []
    t = _T0 + int(warmup_days * 86_400_000)
    k = first_type
    while True:
        t += int(rng.exponential(every_h * _H)) + _H
        typ = TYPES[k % len(TYPES)]
        dur = {"spike": 0, "level_shift": rng.uniform(1, 3), "drift": rng.uniform(2, 4), "stuck": rng.uniform(1, 3),
               "dropout": max(rng.uniform(0.5, 2), 10 * interval / _H)}[typ]
        end = t + int(dur * _H)
        if end > ts[-1] - 2 * _H:
            break
        sel = (ts >= t) & (ts <= end)
        if typ == "spike":
            i = int(np.searchsorted(ts, t))
            sel = np.zeros(n, bool)
            sel[i] = True
            t = end = int(ts[i])
            value[i] += rng.choice([-1, 1]) * rng.uniform(6, 12) * sigma
        elif typ == "level_shift":
            value[sel] += rng.choice([-1, 1]) * rng.uniform(4, 8) * sigma
        elif typ == "drift":
            value[sel] += rng.choice([-1, 1]) * rng.uniform(6, 12) * sigma * (ts[sel] - t) / (end - t)
        elif typ == "stuck":
            i = int(np.searchsorted(ts, t))
            value[sel] = value[i - 1]
        else:
            keep &= ~sel
        if sel.any() or typ == "dropout":
            truth.append({"sensor_id": sid, "type": typ, "start_ts": t, "end_ts": end})
        k += 1
        t = end
    step = sigma * float(rng.uniform(0.05, 0.5))
    value = np.round(value / step) * step
    return ([{"sensor_id": sid, "kind": "generic", "ts": int(a), "metrics": {"value": float(v)}}
             for a, v, ok in zip(ts, value, keep, strict=True) if ok], truth)


def synthetic_streams(sensors: int = 20, days: float = 5.0, seed: int = 0, warmup_days: float = 2.0,
                      every_h: float = 12.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Readings (in event-time order) and ground truth of ``sensors`` synthetic sensors.

    Example
    -------
    >>> readings, truth = synthetic_streams(sensors=2, days=3, seed=1)
    >>> sorted({t["type"] for t in truth}) <= list(TYPES), readings[0]["kind"], len(readings) > 1000
    (True, 'generic', True)
    """
    rng = np.random.default_rng(seed)
    readings: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for s in range(sensors):
        r, t = _sensor(rng, f"SYN-{s:03d}", days, warmup_days, every_h, s)
        readings += r
        truth += t
    readings.sort(key=lambda r: (r["ts"], r["sensor_id"]))
    return readings, truth
