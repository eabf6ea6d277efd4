"""``simulate()``: write a deterministic recording of a Xiamen-like city plus its ground truth.

The run advances in one-minute slices of event time: every bike's state machine, every sensor and
the case list move to the end of the slice, and the slice's messages go to the recording sorted by
event time. Memory is the per-bike/per-sensor state arrays plus one slice, whatever the duration.
Each part draws from its own child of ``SeedSequence(seed)``, so e.g. the sensor feed does not
change when only the number of bikes does. Output (all byte-identical for the same arguments):

- the recording (``manifest.json``, ``bike_gps.jsonl.gz``, ``sensor_telemetry.jsonl.gz``,
  ``incident_events.jsonl.gz``; see ``docs/schemas.md``),
- ``ground_truth.jsonl.gz`` (:mod:`replay.simulate.truth`),
- ``geography.geojson`` (:mod:`replay.simulate.geography`).
"""

from __future__ import annotations

__all__ = ["simulate", "SimulationSummary", "DEFAULT_START", "SLICE_MS", "TRUTH_FILE", "GEOGRAPHY_FILE"]

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from models.incidents.taxonomy import default_categories
from replay.recording import RecordingWriter
from replay.simulate.bike_messages import encode_batches, encode_fixes
from replay.simulate.bikes import BikeParams, Fleet
from replay.simulate.geography import build_geography
from replay.simulate.incidents import generate_cases
from replay.simulate.sensors import SensorFleet
from replay.simulate.truth import TruthLog

#: Monday 2026-11-02 00:00 UTC = 08:00 in Xiamen, the start of the morning rush.
DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)
SLICE_MS = 60_000
TRUTH_FILE = "ground_truth.jsonl.gz"
GEOGRAPHY_FILE = "geography.geojson"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_FENCES = 14_071  # as many as Xiamen Island has (DCIC 2021)


@dataclass(frozen=True)
class SimulationSummary:
    """What a run wrote: messages per feed, GPS fixes (batched or not), truth entries per type.

    Example
    -------
    >>> s = SimulationSummary(Path("x"), 0, 3_600_000, {"bike_gps": 10}, 10, {"gps_fault": 1}, 2.0)
    >>> s.messages_per_s, str(s).split(" in ")[0]
    (5.0, 'simulated 1 h into x: bike_gps 10 (10 GPS fixes)')
    """

    out: Path
    start_ts: int
    end_ts: int
    messages: dict[str, int]
    fixes: int
    truth: dict[str, int]
    elapsed_s: float

    @property
    def messages_per_s(self) -> float:
        """Generation throughput (all feeds' messages per second of wall time)."""
        return sum(self.messages.values()) / max(self.elapsed_s, 1e-9)

    @property
    def fixes_per_s(self) -> float:
        """GPS fixes generated per second of wall time."""
        return self.fixes / max(self.elapsed_s, 1e-9)

    def __str__(self) -> str:
        feeds = ", ".join(f"{k} {v:,}" for k, v in self.messages.items())
        main = [f"{k} {v:,}" for k, v in self.truth.items() if "." not in k]
        return (f"simulated {(self.end_ts - self.start_ts) / 3_600_000:g} h into {self.out}: {feeds} "
                f"({self.fixes:,} GPS fixes) in {self.elapsed_s:.1f} s "
                f"({self.messages_per_s:,.0f} msg/s, {self.fixes_per_s:,.0f} fixes/s); "
                f"truth: {', '.join(main) or 'none'}")


def simulate(out: Path, *, hours: float, bikes: int, sensors: int, seed: int, start: datetime = DEFAULT_START,
             incidents_per_hour: float = 20.0, fences: Path | None = None, gps_interval_s: int = 30,
             batch_operator_fixes: bool = False, progress: Callable[[int], None] | None = None,
             overwrite: bool = False) -> SimulationSummary:
    """Simulate ``hours`` of the city from ``start`` and write it into the directory ``out``.

    Parameters
    ----------
    out
        Recording directory (created). Holding a recording already is an error unless ``overwrite``.
    hours, bikes, sensors, seed
        Duration, fleet sizes and the seed; the same arguments give byte-identical output.
    start
        Aware start time (converted to UTC).
    incidents_per_hour
        Average case reports per hour over a day (≈17 in Xiamen: 150,000 a year).
    fences
        A DCIC fence CSV (``FENCE_ID,FENCE_LOC``) to use real fence polygons; ``None`` generates fences.
    gps_interval_s
        Fix interval of riding bikes (parked bikes send a heartbeat every ~5 min).
    batch_operator_fixes
        Send GPS as operator batches (key = operator, ~1 per operator per second) instead of one
        message per fix.
    progress
        Called after every one-minute slice with the seconds of event time simulated so far.

    Example
    -------
    >>> import tempfile
    >>> s = simulate(Path(tempfile.mkdtemp()) / "sim", hours=0.1, bikes=30, sensors=8, seed=1)
    >>> sorted(s.messages), s.fixes > 30
    (['bike_gps', 'incident_events', 'sensor_telemetry'], True)
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if hours <= 0 or bikes < 0 or sensors < 0 or gps_interval_s < 1:
        raise ValueError("need hours > 0, bikes >= 0, sensors >= 0 and gps_interval_s >= 1")
    t_wall = time.perf_counter()
    out = Path(out)
    start_ms = (start.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)
    end_ms = start_ms + round(hours * 3_600_000)
    geo_rng, bike_rng, sensor_rng, case_rng = (np.random.Generator(np.random.PCG64(s))
                                               for s in np.random.SeedSequence(seed).spawn(4))
    geo = build_geography(geo_rng, n_fences=min(_MAX_FENCES, max(200, bikes // 4)), fences=fences)
    truth = TruthLog()
    params = BikeParams(gps_interval_ms=gps_interval_s * 1000,
                        fault_p=max(1e-4, 4.0 / max(1.0, bikes * hours * 14)))  # a few faults even in tiny runs
    fleet = Fleet(geo, bikes, bike_rng, start_ms, truth, params) if bikes else None
    sfleet = SensorFleet(geo, sensors, sensor_rng, start_ms, end_ms, truth) if sensors else None
    cases = generate_cases(case_rng, geo, default_categories(), start_ms, end_ms, incidents_per_hour, truth)
    args = {"seed": seed, "hours": hours, "bikes": bikes, "sensors": sensors, "start_ts": start_ms,
            "end_ts": end_ms, "incidents_per_hour": incidents_per_hour, "gps_interval_s": gps_interval_s,
            "batch_operator_fixes": batch_operator_fixes, "fences": fences.name if fences else None}
    source = "simulate " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in args.items()
                                    if k not in ("start_ts", "end_ts") and v not in (None, False))
    encode = encode_batches if batch_operator_fixes else encode_fixes
    counts = {"bike_gps": 0, "sensor_telemetry": 0, "incident_events": 0}
    fixes, ci = 0, 0
    with RecordingWriter(out, source=source, overwrite=overwrite) as w:
        (out / GEOGRAPHY_FILE).write_bytes(geo.to_geojson())
        for s0 in range(start_ms, end_ms, SLICE_MS):
            s1 = min(s0 + SLICE_MS, end_ms)
            if fleet is not None:
                fx = fleet.step(s0, s1)
                fixes += len(fx)
                for key, ts, value in encode(fx, fleet.ids, fleet.op):
                    w.add("bike_gps", key, ts, value)
                    counts["bike_gps"] += 1
            if sfleet is not None:
                for key, ts, value in sfleet.step(s0, s1):
                    w.add("sensor_telemetry", key, ts, value)
                    counts["sensor_telemetry"] += 1
            while ci < len(cases) and cases[ci][0] < s1:
                ts, key, value = cases[ci]
                w.add("incident_events", key, ts, value)
                ci += 1
            if progress is not None:
                progress((s1 - start_ms) // 1000)
        counts["incident_events"] = ci
        if sfleet is not None:
            sfleet.finish()
        w.meta.update({"simulator": args, "ground_truth": TRUTH_FILE, "geography": GEOGRAPHY_FILE,
                       "parking_fences": len(geo.fences), "no_parking_zones": len(geo.zones.ids)})
    truth.write(out / TRUTH_FILE, args)
    return SimulationSummary(out, start_ms, end_ms, {k: v for k, v in counts.items() if v}, fixes,
                             truth.counts(), time.perf_counter() - t_wall)
