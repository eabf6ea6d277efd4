"""Sensor kinds of ``docs/schemas.md``: metrics, reporting intervals, hard thresholds, normal signals.

Normal signals follow Xiamen local time (UTC+8): traffic-driven metrics (air quality, bridge load)
peak in the 08:00 and 18:00 rush hours, construction noise and dust follow working hours (07–12,
14–20; sites are silent at night), drainage and manhole water levels carry a semi-diurnal tide.

Hard thresholds (:func:`threshold_at`): billboard tilt over 5°, manhole cover open, drainage level over
the 1.2 m warning line, gas over 20 % LEL, site noise over 70 dB(A) by day (06–22 local) and 55 dB(A) at
night (GB 12523-2011, construction-site boundary limits).
"""

from __future__ import annotations

__all__ = ["MetricSpec", "KindSpec", "KINDS", "threshold_at", "baseline", "draw_params", "local_hour"]

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricSpec:
    """One metric: name (unit in the name), decimals sent, AR(1) noise σ, anomalies may go both ways."""

    name: str
    decimals: int
    noise: float
    two_sided: bool = True


@dataclass(frozen=True)
class KindSpec:
    """One sensor kind: id prefix, reporting interval, share of a fleet, metrics, thresholded metric."""

    prefix: str
    interval_s: int
    share: float
    metrics: tuple[MetricSpec, ...]
    threshold_metric: str | None


M = MetricSpec
KINDS: dict[str, KindSpec] = {
    "billboard_tilt": KindSpec("TILT", 30, 0.20, (M("tilt_deg", 3, 0.03, False),), "tilt_deg"),
    "manhole_cover": KindSpec("MH", 60, 0.20, (M("cover_open", 0, 0.0), M("water_level_cm", 1, 0.5),
                                               M("gas_ppm", 2, 0.1, False)), "cover_open"),
    "drainage_level": KindSpec("DRN", 60, 0.12, (M("level_m", 3, 0.01),), "level_m"),
    "gas": KindSpec("GAS", 30, 0.10, (M("lel_pct", 2, 0.15, False),), "lel_pct"),
    "site_noise": KindSpec("NOISE", 60, 0.12, (M("laeq_db", 1, 1.2),), "laeq_db"),
    "site_dust": KindSpec("DUST", 60, 0.10, (M("pm10_ugm3", 1, 4.0),), None),
    "air_quality": KindSpec("AQ", 60, 0.08, (M("pm25_ugm3", 1, 2.0), M("pm10_ugm3", 1, 3.0),
                                            M("no2_ugm3", 1, 2.0)), None),
    "bridge_health": KindSpec("BRG", 30, 0.08, (M("strain_ue", 1, 3.0), M("deflection_mm", 2, 0.1),
                                               M("vibration_mm_s", 3, 0.05)), None),
}  # fmt: skip
_FIXED_LIMIT = {"billboard_tilt": 5.0, "manhole_cover": 0.5, "drainage_level": 1.2, "gas": 20.0}
_TIDE_MS = 12.42 * 3_600_000
#: Per-sensor parameter ranges of the normal signal, drawn uniformly per sensor.
_PARAM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "billboard_tilt": {"base": (0.3, 1.5), "amp": (0.05, 0.15)},
    "manhole_cover": {"water": (10, 40), "tide": (1, 4), "gas": (0.5, 3)},
    "drainage_level": {"base": (0.2, 0.6), "tide": (0.05, 0.15)},
    "gas": {"base": (0.2, 2.0)},
    "site_noise": {"base": (56, 62), "night": (40, 46)},
    "site_dust": {"bg": (40, 70), "work": (20, 60)},
    "air_quality": {"pm25": (15, 35), "ratio": (1.5, 2.0), "no2": (20, 40)},
    "bridge_health": {"strain": (60, 150), "strain_amp": (20, 60), "defl": (2, 6), "defl_amp": (1, 3),
                      "vib": (0.2, 0.6), "vib_amp": (0.3, 1.0)},
}  # fmt: skip


def local_hour(t: np.ndarray) -> np.ndarray:
    """Xiamen local hour of day (float) of epoch-ms times."""
    return ((np.asarray(t) + 8 * 3_600_000) % 86_400_000) / 3_600_000


def threshold_at(kind: str, t: np.ndarray) -> np.ndarray | None:
    """The hard limit of ``kind``'s thresholded metric at times ``t`` (a reading breaches above it).

    Example
    -------
    >>> threshold_at("site_noise", np.array([0, 15 * 3_600_000])).tolist()  # 08:00 and 23:00 local
    [70.0, 55.0]
    >>> threshold_at("site_dust", np.array([0])) is None
    True
    """
    if kind == "site_noise":
        h = local_hour(t)
        return np.where((h >= 6) & (h < 22), 70.0, 55.0)
    limit = _FIXED_LIMIT.get(kind)
    return None if limit is None else np.full(np.shape(t), limit)


def draw_params(rng: np.random.Generator, kind: str, n: int) -> dict[str, np.ndarray]:
    """Per-sensor levels and amplitudes of the normal signal of ``n`` sensors of ``kind``."""
    params = {name: rng.uniform(lo, hi, n) for name, (lo, hi) in _PARAM_RANGES[kind].items()}
    params["phase"] = rng.uniform(0, 2 * np.pi, n)
    return params


def baseline(kind: str, p: dict[str, np.ndarray], j: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free value of every metric for local sensors ``j`` at times ``t`` (epoch ms).

    Example
    -------
    >>> p = draw_params(np.random.default_rng(0), "site_noise", 1)
    >>> day, night = baseline("site_noise", p, np.array([0, 0]), np.array([0, 15 * 3_600_000]))["laeq_db"]
    >>> bool(day > 55 > night)
    True
    """
    h = local_hour(t)
    traffic = np.exp(-(((h - 8) / 1.3) ** 2)) + np.exp(-(((h - 18) / 1.5) ** 2)) + 0.3 * ((h >= 7) & (h < 22))
    work = (((h >= 7) & (h < 12)) | ((h >= 14) & (h < 20))).astype(np.float64)
    tide = np.sin(2 * np.pi * np.asarray(t) / _TIDE_MS + p["phase"][j])
    if kind == "billboard_tilt":
        return {"tilt_deg": p["base"][j] + p["amp"][j] * np.sin(2 * np.pi * (h - 14) / 24)}
    if kind == "manhole_cover":
        return {"cover_open": np.zeros(len(j)), "water_level_cm": p["water"][j] + p["tide"][j] * tide,
                "gas_ppm": p["gas"][j].copy()}
    if kind == "drainage_level":
        return {"level_m": p["base"][j] + p["tide"][j] * tide}
    if kind == "gas":
        return {"lel_pct": p["base"][j].copy()}
    if kind == "site_noise":
        day = (h >= 6) & (h < 22)
        return {"laeq_db": np.where(day, p["base"][j] - 6 * (1 - work), p["night"][j])}
    if kind == "site_dust":
        return {"pm10_ugm3": p["bg"][j] + p["work"][j] * work}
    if kind == "air_quality":
        pm25 = p["pm25"][j] * (0.8 + 0.4 * traffic)
        return {"pm25_ugm3": pm25, "pm10_ugm3": pm25 * p["ratio"][j], "no2_ugm3": p["no2"][j] * (0.6 + 0.8 * traffic)}
    if kind == "bridge_health":
        return {"strain_ue": p["strain"][j] + p["strain_amp"][j] * traffic,
                "deflection_mm": p["defl"][j] + p["defl_amp"][j] * traffic,
                "vibration_mm_s": p["vib"][j] + p["vib_amp"][j] * traffic}
    raise KeyError(f"unknown sensor kind {kind!r}")
