"""The reference job of ``bench bikes``: a raw aiokafka geofence loop, vectorized, on the same broker and recording.

The issue's figures for "a comparable geofence job" (raw aiokafka, vectorized, ~300k fixes/s on this kind of
machine) come from another run on another day; the host's speed varies by up to 2x between runs. So
``bench bikes`` runs this job on the recording it has just put through the pipeline, on the same broker, in
its own process, and prints the pipeline's figure as a ratio of it: a ratio measured in one run.

What the job does, and nothing more: read every message of ``bike.gps`` from the start (``getmany`` batches,
no consumer group, nothing committed), decode each message with orjson (one fix or an operator batch), look
the batch's points up in the no-parking zones of the same :class:`~models.geo.ZoneIndex` the pipeline uses
(one vectorized STRtree query) and count fixes per zone. No validation, no state, no dead letters, no output
topic, no ClickHouse: the pipeline's per-fix work beyond this is what its ratio measures.
"""

from __future__ import annotations

__all__ = ["BaselineRun", "run_baseline", "geofence_counts"]

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from models.geo import ZoneIndex


@dataclass(frozen=True)
class BaselineRun:
    """Fixes read and counted, seconds from the first fetch to the last fix, CPU seconds of the process."""

    fixes: int
    seconds: float
    cpu_s: float
    in_zone: int  # fixes inside a no-parking zone (a check that the lookups ran)

    @property
    def fixes_per_s(self) -> float:
        return self.fixes / max(self.seconds, 1e-9)


def geofence_counts(values: list[bytes], index: ZoneIndex, counts: np.ndarray) -> int:
    """Decode ``values`` (one fix or an operator batch each), add their fixes to ``counts`` per no-parking
    zone; returns how many fixes they held."""
    lon: list[float] = []
    lat: list[float] = []
    for value in values:
        doc = orjson.loads(value)
        fixes = doc["fixes"] if "fixes" in doc else (doc,)
        lon += [f["lon"] for f in fixes]
        lat += [f["lat"] for f in fixes]
    if lon:
        zone = index.contains(np.asarray(lon), np.asarray(lat), "no_parking")
        hit = zone[zone >= 0]
        np.add.at(counts, hit, 1)
    return len(lon)


async def _consume(bootstrap: str, topic: str, expected: int, index: ZoneIndex, timeout_s: float) -> BaselineRun:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        counts = np.zeros(len(index), np.int64)
        n, t0 = 0, None
        deadline = time.monotonic() + timeout_s
        cpu0 = time.process_time()
        while n < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the baseline read {n:,} of {expected:,} fixes in {timeout_s:.0f} s")
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            if t0 is None and batches:
                t0, cpu0 = time.perf_counter(), time.process_time()
            n += geofence_counts([r.value for recs in batches.values() for r in recs if r.value is not None],
                                 index, counts)
        seconds = time.perf_counter() - (t0 or time.perf_counter())
        return BaselineRun(n, seconds, time.process_time() - cpu0, int(counts.sum()))
    finally:
        await consumer.stop()


def run_baseline(bootstrap: str, topic: str, expected: int, geography: Path, timeout_s: float = 600.0
                 ) -> BaselineRun:
    """Run the job in a process of its own (as the workers run in theirs) until it counted ``expected``
    fixes of ``topic``."""
    args = {"bootstrap": bootstrap, "topic": topic, "expected": expected, "geography": str(geography),
            "timeout_s": timeout_s}
    out = subprocess.run([sys.executable, "-m", "citystream.geofence_baseline", json.dumps(args)],
                         capture_output=True, text=True, timeout=timeout_s + 60, env=dict(os.environ), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the geofence baseline failed ({out.returncode}): {out.stderr[-2000:]}")
    return BaselineRun(**json.loads(out.stdout.strip().splitlines()[-1]))


def _main(raw: str) -> None:
    from citystream.config import Settings
    from streams.agents.bikes_geo import load_bike_setup

    args = json.loads(raw)
    index = load_bike_setup(Settings(geography=Path(args["geography"]))).index  # the pipeline's own index
    run = asyncio.run(_consume(args["bootstrap"], args["topic"], int(args["expected"]), index,
                               float(args["timeout_s"])))
    print(json.dumps(run.__dict__))


if __name__ == "__main__":
    _main(sys.argv[1])
