"""Detector evaluation against injected ground truth (the simulator's or :mod:`.synthetic`'s).

:func:`evaluate_on_truth` streams readings through one detector per sensor (``make(kind)``), in the given
order, score before learn. An alarm is a reading scored ≥ ``threshold``; consecutive alarming readings of a
sensor form one alarm episode. Figures:

* per anomaly type: recall (an alarming reading of the sensor within ``[start_ts, end_ts + grace]``) and the
  median delay from ``start_ts`` to that reading; a dropout window holds no reading, so its alarm is the
  first reading after it and its delay counts from ``end_ts``;
* false alarms: episodes that start outside every truth window (plus ``grace``) of their sensor, per
  sensor-day (each sensor counts from its first to its last reading).
"""

from __future__ import annotations

__all__ = ["evaluate_on_truth", "load_recording", "main"]

import gzip
import statistics
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from models.anomaly import make_detector
from models.timefmt import parse_ts_ms

_DAY_MS = 86_400_000


def _ms(ts: Any) -> int:
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts) if isinstance(ts, int) else parse_ts_ms(ts)


def _metrics(r: dict[str, Any]) -> dict[str, float]:
    if isinstance(r.get("metrics"), dict):
        return dict(r["metrics"])
    return {k: v for k, v in r.items() if k not in ("sensor_id", "kind", "ts", "lat", "lon")}


def evaluate_on_truth(readings: Iterable[dict[str, Any]], truth: Iterable[dict[str, Any]],
                      make: Callable[..., Any] = make_detector, threshold: float = 0.9,
                      grace_ms: int = 600_000) -> dict[str, Any]:
    """Recall and median delay per anomaly type, and false alarms per sensor-day, of ``make``'s detectors.

    ``readings``: dicts with ``sensor_id``, ``kind``, ``ts`` (epoch ms, ISO string or aware datetime) and
    ``metrics`` (or the metrics at the top level). ``truth``: dicts with ``sensor_id``, ``type`` (entries of
    the simulator's ``threshold_breach`` truth count as type ``threshold_breach``), ``start_ts``, ``end_ts``.

    Example
    -------
    >>> t0 = 1_795_244_400_000
    >>> rs = [{"sensor_id": "S", "kind": "gas", "ts": t0 + 60_000 * i, "metrics": {"lel_pct": 1.0 + 0.1 * (i % 3)}}
    ...       for i in range(400)]
    >>> rs[300]["metrics"] = {"lel_pct": 9.0}
    >>> spike = t0 + 60_000 * 300
    >>> r = evaluate_on_truth(rs, [{"sensor_id": "S", "type": "spike", "start_ts": spike, "end_ts": spike}])
    >>> r["types"]["spike"]["recall"], r["false_alarms"]
    (1.0, 0)
    """
    detectors: dict[str, Any] = {}
    span: dict[str, list[int]] = {}
    alarms: dict[str, list[int]] = {}
    starts: dict[str, list[int]] = {}
    alarming: dict[str, bool] = {}
    n = 0
    for r in readings:
        sid, ts = str(r["sensor_id"]), _ms(r["ts"])
        det = detectors.get(sid)
        if det is None:
            det = detectors[sid] = make(r.get("kind", "generic"))
            span[sid] = [ts, ts]
        x = {"ts": ts, **_metrics(r)}
        hit = det.score_one(x) >= threshold
        det.learn_one(x)
        n += 1
        span[sid][1] = max(span[sid][1], ts)
        if hit:
            alarms.setdefault(sid, []).append(ts)
            if not alarming.get(sid):
                starts.setdefault(sid, []).append(ts)
        alarming[sid] = hit
    found: dict[str, list[bool]] = {}
    delays: dict[str, list[float]] = {}
    windows: dict[str, list[tuple[int, int]]] = {}
    for t in truth:
        typ = str(t.get("type") or t.get("truth") or "anomaly")
        sid, a, b = str(t["sensor_id"]), _ms(t["start_ts"]), _ms(t["end_ts"])
        windows.setdefault(sid, []).append((a, b + grace_ms))
        first = next((ts for ts in alarms.get(sid, []) if a <= ts <= b + grace_ms), None)
        found.setdefault(typ, []).append(first is not None)
        delays.setdefault(typ, [])
        if first is not None:  # a dropout can only be seen once it is over: its delay counts from its end
            delays[typ].append((first - (b if typ == "dropout" else a)) / 1000)
    false = sum(1 for sid, ss in starts.items() for ts in ss
                if not any(a <= ts <= b for a, b in windows.get(sid, [])))
    days = sum(b - a for a, b in span.values()) / _DAY_MS
    types = {typ: {"found": sum(hits), "total": len(hits), "recall": sum(hits) / len(hits),
                   "median_delay_s": statistics.median(delays[typ]) if delays[typ] else None}
             for typ, hits in sorted(found.items())}
    return {"types": types, "false_alarms": false, "sensor_days": days, "readings": n, "sensors": len(detectors),
            "false_alarms_per_sensor_day": false / days if days else 0.0, "threshold": threshold}


def load_recording(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Readings (decoded ``sensor_telemetry`` values) and sensor truth (anomalies and threshold breaches)
    of a simulator recording (``docs/schemas.md``)."""
    with gzip.open(path / "sensor_telemetry.jsonl.gz", "rb") as fh:
        readings = [orjson.loads(orjson.loads(line)["v"]) for line in fh]
    with gzip.open(path / "ground_truth.jsonl.gz", "rb") as fh:
        truth = [t for t in map(orjson.loads, fh) if t.get("truth") in ("sensor_anomaly", "threshold_breach")]
    return readings, [t if "type" in t else {**t, "type": "threshold_breach"} for t in truth]


def main(readings: Iterable[dict[str, Any]], truth: Iterable[dict[str, Any]],
         detectors: dict[str, Callable[..., Any]] | None = None, threshold: float = 0.9,
         title: str = "injected anomalies") -> dict[str, Any]:
    """Print recall / delay per type and false alarms for each named detector factory; return the figures."""
    from rich.console import Console
    from rich.table import Table

    readings, truth = list(readings), list(truth)
    results = {name: evaluate_on_truth(readings, truth, make, threshold)
               for name, make in (detectors or {"default": make_detector}).items()}
    table = Table(title=f"{title}, threshold {threshold:g}", title_justify="left")
    table.add_column("detector")
    types = sorted({t for r in results.values() for t in r["types"]})
    for typ in types:
        table.add_column(f"{typ} recall (delay s)", justify="right")
    table.add_column("false alarms / sensor-day", justify="right")
    for name, r in results.items():
        cells = []
        for typ in types:
            f = r["types"].get(typ)
            d = "-" if not f or f["median_delay_s"] is None else f"{f['median_delay_s']:.0f}"
            cells.append("-" if not f else f"{f['recall']:.2f} ({d})")
        table.add_row(name, *cells, f"{r['false_alarms_per_sensor_day']:.3f}")
    Console().print(table)
    return results
