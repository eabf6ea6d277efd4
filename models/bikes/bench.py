"""Synthetic fleet feed and a throughput benchmark of :meth:`BikeSupervisor.process`."""

from __future__ import annotations

__all__ = ["synthetic_fleet", "bench_process"]

import time
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from models.bikes.supervisor import BikeSupervisor
from models.geo.index import ZoneIndex
from models.gps import FixBatch


def synthetic_fleet(
    index: ZoneIndex,
    spots: tuple[NDArray[np.float64], NDArray[np.float64]],
    n_bikes: int,
    n_steps: int,
    report_ms: int = 30_000,
    start_ts: int = 1_608_501_600_000,
    operators: Sequence[str] = ("meituan", "hellobike", "qingju"),
    unlock_p: float = 0.05,
    speed_ms: float = 4.0,
    noise_m: float = 4.0,
    seed: int = 0,
) -> FixBatch:
    """A fleet feed in time order: every bike reports every ``report_ms``; a parked bike unlocks
    with probability ``unlock_p`` per report and rides at ``speed_ms`` to a random spot of ``spots``
    (lon, lat arrays, e.g. real parking positions), where it locks. Deterministic for a seed.

    >>> import shapely
    >>> from models.geo.zones import Zone
    >>> idx = ZoneIndex([Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.10006, 24.50002))])
    >>> b = synthetic_fleet(idx, (np.array([118.1, 118.11]), np.array([24.5, 24.51])), 3, 4)
    >>> len(b), sorted(set(b.bike_id)), bool(np.all(np.diff(b.ts) >= 0))
    (12, ['B000000', 'B000001', 'B000002'], True)
    """
    rng = np.random.default_rng(seed)
    proj = index.projection
    sx, sy = proj.forward(*spots)
    start = rng.integers(0, len(sx), n_bikes)
    x, y = sx[start].copy(), sy[start].copy()
    tx, ty = x.copy(), y.copy()
    locked = np.ones(n_bikes, bool)
    ids = [f"B{i:06d}" for i in range(n_bikes)]
    ops = [operators[i % len(operators)] for i in range(n_bikes)]
    cols: dict[str, list[NDArray]] = {"ts": [], "lon": [], "lat": [], "locked": []}
    step_m = speed_ms * report_ms / 1000
    for k in range(n_steps):
        go = locked & (rng.random(n_bikes) < unlock_p)
        pick = rng.integers(0, len(sx), int(go.sum()))
        tx[go], ty[go] = sx[pick], sy[pick]
        locked &= ~go
        dx, dy = tx - x, ty - y
        dist = np.hypot(dx, dy)
        arrive = ~locked & (dist <= step_m)
        frac = np.where(locked | arrive, 1.0, step_m / np.maximum(dist, 1e-9))
        ride = ~locked
        x[ride], y[ride] = x[ride] + dx[ride] * frac[ride], y[ride] + dy[ride] * frac[ride]
        locked |= arrive
        lon, lat = proj.inverse(x + rng.normal(0, noise_m, n_bikes), y + rng.normal(0, noise_m, n_bikes))
        cols["ts"].append(start_ts + k * report_ms + rng.integers(0, report_ms, n_bikes))
        cols["lon"].append(lon)
        cols["lat"].append(lat)
        cols["locked"].append(locked.copy())
    ts = np.concatenate(cols["ts"])
    order = np.argsort(ts, kind="stable")
    return FixBatch(
        [ids[i % n_bikes] for i in order.tolist()], [ops[i % n_bikes] for i in order.tolist()],
        ts[order], np.concatenate(cols["lat"])[order], np.concatenate(cols["lon"])[order],
        np.concatenate(cols["locked"])[order],
    )


def bench_process(
    make_supervisor: Callable[[], BikeSupervisor],
    feed: FixBatch,
    batch_size: int = 5_000,
    repeat: int = 1,
    warmup: int = 0,
    timer: Callable[[], float] = time.perf_counter,
) -> tuple[float, int]:
    """Feed ``feed`` in batches to ``process`` of a fresh supervisor; return the best fixes per
    second over ``repeat`` runs and the number of events of one run.

    The first ``warmup`` fixes (whole batches) are processed untimed, so that the figure is the
    steady state rather than the first sight of every bike. Only ``process`` calls are timed.
    ``timer`` measures elapsed compute only; it never feeds event time.
    """
    n = len(feed)
    batches = [feed.take(np.arange(a, min(n, a + batch_size))) for a in range(0, n, batch_size)]
    skip = -(-warmup // batch_size)
    timed = sum(len(b) for b in batches[skip:])
    best, events = float("inf"), 0
    for _ in range(max(1, repeat)):
        sup, events, elapsed = make_supervisor(), 0, 0.0
        for i, batch in enumerate(batches):
            start = timer()
            found = sup.process(batch)
            if i >= skip:
                elapsed += timer() - start
                events += len(found)
        best = min(best, elapsed)
    return timed / max(best, 1e-9), events
