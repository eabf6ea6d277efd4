"""Sensor kinds, their metrics (unit in the name) and physical ranges; decoding and validation of readings.

A reading that cannot be used becomes an :class:`Invalid` with a stable reason code (a metric label and a
ClickHouse column): ``invalid_json``, ``not_an_object``, ``missing_field``, ``wrong_type``, ``bad_timestamp``,
``key_mismatch``, ``unknown_kind``, ``unknown_metric``, ``not_finite``, ``out_of_range``, ``clock_ahead`` (dated
after the newest time its message allows: see :func:`models.timefmt.clock_ahead`).
"""

from __future__ import annotations

__all__ = ["MetricSpec", "KINDS", "KIND_METRICS", "Reading", "Invalid", "decode_reading", "check_reading",
           "validate_reading", "REASONS"]

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from models.timefmt import clock_ahead, parse_ts_ms


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of a kind: its unit and physical range (inclusive); outside means a broken sensor or a
    unit error, not an anomaly. ``binary`` metrics take 0 or 1 only."""

    unit: str
    lo: float
    hi: float
    binary: bool = False


M = MetricSpec
#: kind → metric → spec, for the kinds of ``docs/schemas.md``.
KINDS: dict[str, dict[str, MetricSpec]] = {
    "billboard_tilt": {"tilt_deg": M("degree", -90.0, 90.0)},
    "manhole_cover": {"cover_open": M("0/1", 0, 1, binary=True), "water_level_cm": M("cm", 0.0, 1000.0),
                      "gas_ppm": M("ppm", 0.0, 100_000.0)},
    "drainage_level": {"level_m": M("m", -5.0, 20.0)},
    "gas": {"lel_pct": M("% LEL", 0.0, 100.0)},
    "site_noise": {"laeq_db": M("dB(A)", 0.0, 160.0)},
    "site_dust": {"pm10_ugm3": M("µg/m³", 0.0, 20_000.0)},
    "air_quality": {"pm25_ugm3": M("µg/m³", 0.0, 2000.0), "pm10_ugm3": M("µg/m³", 0.0, 5000.0),
                    "no2_ugm3": M("µg/m³", 0.0, 5000.0)},
    "bridge_health": {"strain_ue": M("µε", -5000.0, 5000.0), "deflection_mm": M("mm", -1000.0, 1000.0),
                      "vibration_mm_s": M("mm/s", 0.0, 1000.0)},
}  # fmt: skip
#: kind → metric → physical range (the ranges of :data:`KINDS`).
KIND_METRICS: dict[str, dict[str, tuple[float, float]]] = {
    kind: {name: (m.lo, m.hi) for name, m in metrics.items()} for kind, metrics in KINDS.items()}
REASONS = ("invalid_json", "not_an_object", "missing_field", "wrong_type", "bad_timestamp", "key_mismatch",
           "unknown_kind", "unknown_metric", "not_finite", "out_of_range", "clock_ahead")


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
    if not isinstance(metrics, dict):
        return Invalid("wrong_type", f"metrics must be an object, got {type(metrics).__name__}")
    if not metrics:
        return Invalid("missing_field", f"metrics must name at least one metric (expected {', '.join(KINDS[kind])})")
    spec = KINDS[kind]
    out = {}
    for name, v in metrics.items():
        if name not in spec:
            return Invalid("unknown_metric", f"{kind} has no metric {str(name)[:40]!r} (expected {', '.join(spec)})")
        if not _num(v):
            return Invalid("wrong_type", f"{name} must be a number, got {type(v).__name__}")
        if not math.isfinite(v):
            return Invalid("not_finite", f"{name} is {v}")
        m = spec[name]
        if not m.lo <= v <= m.hi or (m.binary and v not in (0, 1)):
            what = "0 or 1" if m.binary else f"the physical range [{m.lo:g}, {m.hi:g}] {m.unit}"
            return Invalid("out_of_range", f"{name}={v} outside {what}")
        out[name] = float(v)
    return out


def decode_reading(value: bytes | None, key: str | None = None, latest: int | None = None) -> Reading | Invalid:
    """Decode and validate one ``sensor.telemetry`` message (``docs/schemas.md``); ``latest``: the newest time
    the message allows (:func:`models.timefmt.clock_ahead`).

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
    r = check_reading(msg, key)
    if isinstance(r, Reading) and (ahead := clock_ahead(r.ts, latest)):
        return Invalid("clock_ahead", f"reading of {r.sensor_id} {ahead}")
    return r


def check_reading(msg: Any, key: str | None = None) -> Reading | Invalid:
    """Validate a decoded ``sensor.telemetry`` message (a dict); ``ts`` may also be an aware datetime.

    Example
    -------
    >>> check_reading({"sensor_id": "G", "kind": "gas", "ts": 1795244400000, "metrics": {"lel_pct": 3}}).metrics
    {'lel_pct': 3.0}
    """
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
    if kind not in KINDS:
        return Invalid("unknown_kind", f"unknown sensor kind {str(kind)[:40]!r} (expected {', '.join(KINDS)})")
    try:
        ts = msg["ts"]
        ts = _aware_ms(ts) if isinstance(ts, datetime) else parse_ts_ms(ts)
    except ValueError as exc:
        return Invalid("bad_timestamp", str(exc))
    lat: Any = msg.get("lat")
    lon: Any = msg.get("lon")
    if lat is not None or lon is not None:
        if not (_num(lat) and _num(lon)):
            return Invalid("wrong_type", "lat and lon must both be numbers")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return Invalid("out_of_range", f"position ({lat}, {lon}) out of range")
    metrics = _check_metrics(kind, msg["metrics"])
    if isinstance(metrics, Invalid):
        return metrics
    return Reading(sid, kind, ts, None if lat is None else float(lat), None if lon is None else float(lon), metrics)


def _aware_ms(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp (no UTC offset): {ts.isoformat()!r}")
    return round(ts.timestamp() * 1000)


def validate_reading(x: dict[str, Any]) -> str | None:
    """Why the reading ``x`` (a decoded telemetry message) is invalid, or None: ``"<code>: <detail>"``
    with a code of :data:`REASONS` (the agent dead-letters the reading with it).

    Example
    -------
    >>> ok = {"sensor_id": "DRN-1", "kind": "drainage_level", "ts": 1795244400000, "metrics": {"level_m": 0.4}}
    >>> validate_reading(ok) is None
    True
    >>> validate_reading({**ok, "kind": "ufo"})
    "unknown_kind: unknown sensor kind 'ufo' (expected billboard_tilt, ...)"
    >>> validate_reading({**ok, "metrics": {}})
    'missing_field: metrics must name at least one metric (expected level_m)'
    >>> validate_reading({**ok, "metrics": {"level_m": "high"}})
    'wrong_type: level_m must be a number, got str'
    >>> validate_reading({**ok, "metrics": {"level_m": 25.0}})
    'out_of_range: level_m=25.0 outside the physical range [-5, 20] m'
    >>> validate_reading({**ok, "metrics": {"level_m": float("nan")}})
    'not_finite: level_m is nan'
    """
    got = check_reading(x)
    return f"{got.reason}: {got.detail}" if isinstance(got, Invalid) else None
