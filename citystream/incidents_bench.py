"""``citystream bench incidents``: incident events per second, in-process and end to end.

End to end = the embedded Tansu broker, one ``--role all`` worker in this process (``track_incidents``,
``link_duplicates``, ``store_incident_updates``) and chDB: the clock runs from the first message
produced (replay at --speed max, then a heartbeat per partition at the feed's end) until ClickHouse holds
every transition the feed yields.
"""

from __future__ import annotations

__all__ = ["run_bench"]

import asyncio
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from citystream.config import Role, Settings
from citystream.embedded import TansuBroker
from citystream.incidents_eval import run_recording
from citystream.worker import BoundedWorker, build
from replay.produce import make_producer, produce_recording
from replay.recording import Recording
from replay.simulate import simulate
from streams.agents.incidents_setup import incident_setup
from streams.app import Pipeline


def run_bench(settings: Settings, *, hours: float, per_hour: float, seed: int, workdir: Path | None,
              console: Console) -> list[tuple[str, Any]]:  # fmt: skip
    """Run the benchmark; returns ``(figure, value)`` rows."""
    work = workdir or Path(tempfile.mkdtemp(prefix="citystream-bench-incidents-"))
    with console.status(f"simulating {hours} h of cases at {per_hour:,.0f}/h ..."):
        sim = simulate(work / "rec", hours=hours, bikes=0, sensors=0, seed=seed, incidents_per_hour=per_hour,
                       overwrite=True)  # fmt: skip
    rec = Recording.open(work / "rec")
    events, end_ts = rec.records, sim.end_ts
    t = time.perf_counter()
    run = run_recording(rec, incident_setup(settings))
    in_process_s = time.perf_counter() - t
    expected = (run.counts["applied"], len(run.links()))
    figures: list[tuple[str, Any]] = [
        ("case events", events), ("transitions applied", expected[0]), ("duplicate links", expected[1]),
        ("in-process (CaseFlow + ReportLinker, one core)", f"{events / in_process_s:,.0f} events/s"),
    ]
    ch_dir = work / "clickhouse"
    shutil.rmtree(ch_dir, ignore_errors=True)
    with TansuBroker(log_path=work / "tansu.log") as broker:
        s = Settings(**{**settings.model_dump(), "broker": broker.url, "clickhouse_dsn": f"chdb://{ch_dir}",
                        "data_dir": work / "var", "topic_prefix": "bench", "app_id": "bench-incidents"})  # fmt: skip
        pipe = build(s, Role.all)
        worker = BoundedWorker(pipe.app, loglevel=s.log_level, shutdown_timeout=s.shutdown_timeout_s, quiet=True)
        result: dict[str, Any] = {}

        @pipe.app.task
        async def drive() -> None:
            try:
                with console.status(f"end to end: {events:,} events through the embedded stack ..."):
                    result.update(await _drive(pipe, rec, broker, end_ts, expected))
            except Exception as exc:  # noqa: BLE001 - reported after the worker stopped
                result["error"] = exc
            worker._schedule_shutdown(signal.SIGTERM)

        try:
            worker.execute_from_commandline()
        except SystemExit:
            pass
        finally:
            if pipe.clickhouse is not None:
                pipe.clickhouse.close()
    if "error" in result:
        raise RuntimeError(f"benchmark failed: {result['error']!r}")
    figures += [
        ("replay --speed max into Tansu", f"{events / result['produce_s']:,.0f} events/s"),
        ("end to end (broker → agents → ClickHouse)",
         f"{events / result['total_s']:,.0f} events/s ({events:,} in {result['total_s']:.1f} s)"),
        ("rows stored (cases, transitions, breaches, duplicates)", result["rows"]),
    ]
    return figures


async def _drive(pipe: Pipeline, rec: Recording, broker: TansuBroker, end_ts: int,
                 expected: tuple[int, int]) -> dict[str, Any]:  # fmt: skip
    assert pipe.clickhouse is not None
    while not pipe.app.consumer.assignment() or pipe.app.rebalancing:
        await asyncio.sleep(0.1)
    topic = pipe.settings.topic("incident.events")

    def produce() -> float:
        producer = make_producer(broker.bootstrap)
        t = time.perf_counter()
        produce_recording(producer, rec.merged(["incident_events"]), lambda _feed: topic, speed=None)
        beat = orjson.dumps({"heartbeat": True, "ts": end_ts})
        for q in range(pipe.settings.partitions):
            producer.send(topic, value=beat, partition=q, timestamp_ms=end_ts)
        producer.flush()
        producer.close()
        return time.perf_counter() - t

    t0 = time.perf_counter()
    produce_s = await asyncio.to_thread(produce)
    counts = "SELECT (SELECT count() FROM incident_cases FINAL), (SELECT count() FROM incident_transitions FINAL), " \
             "(SELECT count() FROM incident_breaches FINAL), (SELECT count() FROM incident_duplicates FINAL)"
    progress = "SELECT (SELECT count() FROM incident_transitions), (SELECT count() FROM incident_duplicates)"
    while True:  # plain counts are cheap: they share the ClickHouse thread with the sinks
        stored = await pipe.clickhouse.acall(lambda c: tuple(c.query(progress).result_rows[0]))
        if stored[0] >= expected[0] and stored[1] >= expected[1]:
            break
        if time.perf_counter() - t0 > 1800:
            raise TimeoutError(f"only {stored} of {expected} transitions and links stored after 30 min")
        await asyncio.sleep(0.5)
    total_s = time.perf_counter() - t0
    rows = await pipe.clickhouse.acall(lambda c: c.query(counts).result_rows[0])
    return {"produce_s": produce_s, "total_s": total_s, "rows": ", ".join(f"{r:,}" for r in rows)}
