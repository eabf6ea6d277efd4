"""Sensor kinds, their metrics (unit in the name) and physical ranges; decoding and validation of readings.

A reading that cannot be used becomes an :class:`Invalid` with a stable reason code (a metric label and a
ClickHouse column): ``invalid_json``, ``not_an_object``, ``missing_field``, ``wrong_type``, ``bad_timestamp``,
``key_mismatch``, ``unknown_kind``, ``unknown_metric``, ``not_finite``, ``out_of_range``.
"""

from __future__ import annotations

__all__ = ["KIND_METRICS", "Reading", "Invalid", "decode_reading", "REASONS"]

import math
from dataclasses import dataclass
from typing import Any

import orjson

from models.timefmt import parse_ts_ms

#: kind → metric → physical range (inclusive). Outside means a broken sensor or a unit error.
KIND_METRICS: dict[str, dict[str, tuple[float, float]]] = {
    "billboard_tilt": {"tilt_deg": (0.0, 90.0)},
    "manhole_cover": {"cover_open": (0, 1), "water_level_cm": (0.0, 1000.0), "gas_ppm": (0.0, 100_000.0)},
    "drainage_level": {"level_m": (0.0, 20.0)},
    "gas": {"lel_pct": (0.0, 100.0)},
    "site_noise": {"laeq_db": (0.0, 160.0)},
    "site_dust": {"pm10_ugm3": (0.0, 20_000.0)},
    "air_quality": {"pm25_ugm3": (0.0, 2000.0), "pm10_ugm3": (0.0, 5000.0), "no2_ugm3": (0.0, 5000.0)},
    "bridge_health": {"strain_ue": (-5000.0, 5000.0), "deflection_mm": (-1000.0, 1000.0),
                      "vibration_mm_s": (0.0, 1000.0)},
}
REASONS = ("invalid_json", "not_an_object", "missing_field", "wrong_type", "bad_timestamp", "key_mismatch",
           "unknown_kind", "unknown_metric", "not_finite", "out_of_range")


@dataclass(frozen=True, slots=True)
class Reading:
    """A valid reading; ``ts`` in epoch ms (UTC), ``metrics`` the named values (a subset of the kind's)."""

    sensor_id: str
    kind: str
    ts: int
    lat: float | None
    lon: float | None
    metrics: dict[str, float]


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a reading is refused: stable ``reason`` code and a readable ``detail``."""

    reason: str
    detail: str


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_metrics(kind: str, metrics: Any) -> dict[str, float] | Invalid:
    if not isinstance(metrics, dict) or not metrics:
        return Invalid("missing_field" if not metrics else "wrong_type", "metrics must be a non-empty object")
    spec = KIND_METRICS[kind]
    out = {}
    for name, v in metrics.items():
        if name not in spec:
            return Invalid("unknown_metric", f"{kind} has no metric {str(name)[:40]!r} (expected {', '.join(spec)})")
        if not _num(v):
            return Invalid("wrong_type", f"{name} must be a number, got {type(v).__name__}")
        if not math.isfinite(v):
            return Invalid("not_finite", f"{name} is {v}")
        lo, hi = spec[name]
        if not lo <= v <= hi:
            return Invalid("out_of_range", f"{name}={v} outside the physical range [{lo}, {hi}]")
        out[name] = float(v)
    return out


def decode_reading(value: bytes | None, key: str | None = None) -> Reading | Invalid:
    """Decode and validate one ``sensor.telemetry`` message (``docs/schemas.md``).

    Example
    -------
    >>> r = decode_reading(b'{"sensor_id": "TILT-0007", "kind": "billboard_tilt", "ts": "2026-11-21T07:00:00Z",'
    ...                    b' "lat": 24.47, "lon": 118.11, "metrics": {"tilt_deg": 0.8}}')
    >>> r.ts, r.metrics
    (1795244400000, {'tilt_deg': 0.8})
    >>> decode_reading(b'{"sensor_id": "T", "kind": "billboard_tilt", "ts": 1795244400000,'
    ...                b' "metrics": {"tilt_rad": 0.01}}').reason
    'unknown_metric'
    >>> decode_reading(b'{"sensor_id": "T", "kind": "gas", "ts": 1795244400000, "metrics": {"lel_pct": 130}}').reason
    'out_of_range'
    """
    try:
        msg = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return Invalid("invalid_json", f"not JSON: {exc}"[:200])
    if not isinstance(msg, dict):
        return Invalid("not_an_object", f"expected a JSON object, got {type(msg).__name__}")
    for f in ("sensor_id", "kind", "ts", "metrics"):
        if msg.get(f) is None:
            return Invalid("missing_field", f"missing {f}")
    sid, kind = msg["sensor_id"], msg["kind"]
    if not isinstance(sid, str) or not 1 <= len(sid) <= 64:
        return Invalid("wrong_type", "sensor_id must be a string of 1-64 characters")
    if key is not None and key != sid:
        return Invalid("key_mismatch", f"message key {key[:64]!r} differs from sensor_id {sid!r}")
    if kind not in KIND_METRICS:
        return Invalid("unknown_kind", f"unknown sensor kind {str(kind)[:40]!r}")
    try:
        ts = parse_ts_ms(msg["ts"])
    except ValueError as exc:
        return Invalid("bad_timestamp", str(exc))
    lat, lon = msg.get("lat"), msg.get("lon")
    if lat is not None or lon is not None:
        if not (_num(lat) and _num(lon)):
            return Invalid("wrong_type", "lat and lon must both be numbers")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return Invalid("out_of_range", f"position ({lat}, {lon}) out of range")
    metrics = _check_metrics(kind, msg["metrics"])
    if isinstance(metrics, Invalid):
        return metrics
    return Reading(sid, kind, ts, None if lat is None else float(lat), None if lon is None else float(lon), metrics)
