"""IoT sensors: a fleet of mixed kinds producing ``citystream.sensor.telemetry`` messages slice by slice.

Each sensor reports every ``interval_s`` of its kind at a fixed phase, plus 0–0.5 s of jitter; ``ts``
is an ISO-8601 UTC string with milliseconds. A reading is the kind's normal signal
(:mod:`.sensor_kinds`) plus AR(1) noise (φ = 0.7), with the injected events of
:mod:`.sensor_events` applied, clipped at 0 and rounded to the metric's decimals. Threshold breaches
are recorded as truth from the readings actually sent (consecutive breaching readings form one
episode), so they include breaches caused by anomalies as well as the injected episodes.
"""

from __future__ import annotations

__all__ = ["SensorFleet", "iso_ms"]

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

from replay.simulate.geography import Geography
from replay.simulate.sensor_events import SensorEvent, schedule_events
from replay.simulate.sensor_kinds import KINDS, baseline, draw_params, threshold_at
from replay.simulate.truth import TruthLog

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PHI = 0.7


def iso_ms(ms: int) -> str:
    """Epoch ms → ``2026-11-02T00:00:00.250Z``.

    Example
    -------
    >>> iso_ms(1793577600250)
    '2026-11-02T00:00:00.250Z'
    """
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _split(n: int) -> list[int]:
    shares = np.array([k.share for k in KINDS.values()])
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts.tolist()


class SensorFleet:
    """``n`` sensors over ``[start, end)``; :meth:`step` yields a slice's messages, :meth:`finish` the rest.

    Example
    -------
    >>> from replay.simulate.geography import build_geography
    >>> rng = np.random.default_rng(2)
    >>> truth = TruthLog()
    >>> sf = SensorFleet(build_geography(rng, n_fences=50, n_zones=2), 16, rng, 0, 3_600_000, truth)
    >>> msgs = list(sf.step(0, 60_000))
    >>> len(msgs) >= 16, sorted({orjson.loads(v)["kind"] for _, _, v in msgs})[:2]
    (True, ['air_quality', 'billboard_tilt'])
    """

    def __init__(self, geo: Geography, n: int, rng: np.random.Generator, start: int, end: int,
                 truth: TruthLog) -> None:
        self.rng, self.truth, self.start = rng, truth, start
        self.kind: list[str] = []
        self.ids: list[str] = []
        for kind, count in zip(KINDS, _split(n), strict=True):
            self.kind += [kind] * count
            self.ids += [f"{KINDS[kind].prefix}-{i + 1:04d}" for i in range(count)]
        anchor = geo.fences.centroid[rng.integers(0, len(geo.fences), n)] + rng.normal(0, 15, (n, 2))
        lon, lat = geo.proj.to_lonlat(anchor[:, 0], anchor[:, 1])
        self.lon, self.lat = lon.round(6).tolist(), lat.round(6).tolist()
        self.phase = np.array([rng.integers(0, KINDS[k].interval_s) * 1000 for k in self.kind], np.int64)
        self.groups: dict[str, np.ndarray] = {k: np.array([i for i in range(n) if self.kind[i] == k], np.int64)
                                              for k in KINDS}
        self.params = {k: draw_params(rng, k, len(g)) for k, g in self.groups.items()}
        self.eps = {k: np.zeros((len(g), len(KINDS[k].metrics))) for k, g in self.groups.items()}
        self.last = {k: np.full((len(g), len(KINDS[k].metrics)), np.nan) for k, g in self.groups.items()}
        self.local = np.zeros(n, np.int64)
        for g in self.groups.values():
            self.local[g] = np.arange(len(g))
        self.events = schedule_events(rng, self.kind, self.phase, start, end)
        for e in self.events:
            if e.type != "threshold":
                self.truth.add("sensor_anomaly", sensor_id=self.ids[e.sensor], kind=self.kind[e.sensor],
                               metric=e.metric, type=e.type, start_ts=e.start, end_ts=e.end,
                               magnitude=None if e.magnitude is None else round(e.magnitude, 4))
        self.th_open = np.full(n, -1, np.int64)
        self.th_last = np.zeros(n, np.int64)
        self.th_peak = np.zeros(n)
        self.th_limit = np.zeros(n)

    def step(self, s0: int, s1: int) -> Iterator[tuple[str, int, bytes]]:
        """``(sensor_id, ts_ms, value)`` of the readings with ``s0 <= ts < s1``, in ts order."""
        active = [e for e in self.events if e.start < s1 and e.end >= s0]
        out: list[tuple[int, int, str, bytes]] = []
        for kind, g in self.groups.items():
            if len(g):
                self._kind_slice(kind, g, s0, s1, [e for e in active if self.kind[e.sensor] == kind], out)
        out.sort(key=lambda r: r[:2])
        for ts, _, key, value in out:
            yield key, ts, value

    def _kind_slice(self, kind: str, g: np.ndarray, s0: int, s1: int, events: list[SensorEvent],
                    out: list[tuple[int, int, str, bytes]]) -> None:
        spec = KINDS[kind]
        step = spec.interval_s * 1000
        names = [m.name for m in spec.metrics]
        sigma = np.array([m.noise for m in spec.metrics])
        k_lo = -((self.start + self.phase[g] - s0) // step)  # ceil((s0 - start - phase) / step)
        local = np.arange(len(g))
        for j in range((s1 - s0) // step + 2):
            nominal = self.start + self.phase[g] + (k_lo + j) * step
            valid = nominal < s1
            t = nominal + self.rng.integers(0, 500, len(g))
            z = self.rng.normal(0.0, 1.0, (len(g), len(names)))
            if not valid.any():
                continue
            eps = self.eps[kind]
            eps[valid] = _PHI * eps[valid] + np.sqrt(1 - _PHI**2) * sigma * z[valid]
            base = baseline(kind, self.params[kind], local, t)
            vals = np.stack([base[m] for m in names], axis=1) + eps
            for e in events:
                ls = int(self.local[e.sensor])
                if valid[ls] and e.start <= t[ls] <= e.end:
                    valid[ls] = self._apply(e, kind, names, vals, ls, int(t[ls]))
            vals = np.maximum(vals, 0.0)
            for c, m in enumerate(spec.metrics):
                vals[:, c] = vals[:, c].round(m.decimals)
            self.last[kind][valid] = vals[valid]
            if spec.threshold_metric is not None:
                self._track(kind, g, valid, t, vals[:, names.index(spec.threshold_metric)])
            for ls in np.flatnonzero(valid).tolist():
                metrics = {m: (int(v) if m == "cover_open" else v) for m, v in zip(names, vals[ls].tolist(),
                                                                                      strict=True)}
                s = int(g[ls])
                ts = int(t[ls])
                out.append((ts, s, self.ids[s], orjson.dumps(
                    {"sensor_id": self.ids[s], "kind": kind, "ts": iso_ms(ts), "lat": self.lat[s],
                     "lon": self.lon[s], "metrics": metrics})))

    def _apply(self, e: SensorEvent, kind: str, names: list[str], vals: np.ndarray, ls: int, t: int) -> bool:
        """Apply event ``e`` to local sensor ``ls``'s reading at ``t``; False when the reading is dropped."""
        if e.type == "dropout":
            return False
        c = names.index(e.metric or "")
        mag = e.magnitude or 0.0
        if e.type in ("spike", "level_shift"):
            vals[ls, c] += mag
        elif e.type == "drift":
            vals[ls, c] += mag * (t - e.start) / max(e.end - e.start, 1)
        elif e.type == "stuck":
            if e.stuck_value is None:
                prev = self.last[kind][ls, c]
                e.stuck_value = float(prev) if np.isfinite(prev) else float(vals[ls, c])
            vals[ls, c] = e.stuck_value
        elif kind == "drainage_level":  # a storm: the level rises to the peak and falls back
            frac = (t - e.start) / max(e.end - e.start, 1)
            vals[ls, c] += (mag - vals[ls, c]) * np.sin(np.pi * frac)
        elif kind == "site_noise":
            limit = threshold_at(kind, np.array([t]))
            vals[ls, c] = float(limit[0]) + mag + abs(self.eps[kind][ls, c]) if limit is not None else vals[ls, c]
        else:  # tilt, gas: forced level plus the reading's own noise; manhole: cover open
            vals[ls, c] = mag + (self.eps[kind][ls, c] if kind != "manhole_cover" else 0.0)
        return True

    def _track(self, kind: str, g: np.ndarray, valid: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        limit = threshold_at(kind, t)
        assert limit is not None
        breach = valid & (v > limit)
        s = g
        new = breach & (self.th_open[s] < 0)
        self.th_open[s[new]], self.th_limit[s[new]], self.th_peak[s[new]] = t[new], limit[new], v[new]
        self.th_peak[s[breach]] = np.maximum(self.th_peak[s[breach]], v[breach])
        self.th_last[s[breach]] = t[breach]
        for k in np.flatnonzero(valid & ~breach & (self.th_open[s] >= 0)).tolist():
            self._close(int(s[k]))

    def _close(self, s: int) -> None:
        kind = self.kind[s]
        self.truth.add("threshold_breach", sensor_id=self.ids[s], kind=kind, metric=KINDS[kind].threshold_metric,
                       threshold=float(self.th_limit[s]), start_ts=int(self.th_open[s]),
                       end_ts=int(self.th_last[s]), peak=float(self.th_peak[s]))
        self.th_open[s] = -1

    def finish(self) -> None:
        """Record the threshold episodes still open at the end of the run."""
        for s in np.flatnonzero(self.th_open >= 0).tolist():
            self._close(s)
