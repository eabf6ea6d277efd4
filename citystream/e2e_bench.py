"""End-to-end benchmarks on the embedded stack, in this process: a fresh Tansu broker, one ``--role all``
worker (every agent and sink) and chDB. The clock runs from the first message produced (the recording's
feeds replayed at ``--speed max`` with the batched producer, then optionally their end announced) until ClickHouse holds
what the feed must yield (``done`` on a cheap progress query, polled on the sinks' ClickHouse thread).

Used by ``citystream bench sensors`` and ``citystream bench incidents``.
"""

from __future__ import annotations

__all__ = ["EndToEnd", "run_end_to_end"]

import asyncio
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from citystream.config import Role, Settings
from citystream.embedded import TansuBroker
from citystream.worker import build, run_in_process, worker_of
from replay.produce import announce_end, produce_recording
from replay.recording import Recording
from streams.app import Pipeline
from streams.topics import FEEDS


@dataclass(frozen=True)
class EndToEnd:
    """Seconds to produce the feeds, seconds until ``done``, and the final ``rows_sql`` result."""

    produce_s: float
    total_s: float
    rows: tuple[Any, ...]


def run_end_to_end(settings: Settings, rec: Recording, feeds: list[str], *, progress_sql: str,
                   done: Callable[[tuple[Any, ...]], bool], rows_sql: str, workdir: Path, console: Console,
                   what: str, end_ts: int | None = None, timeout_s: float = 1800.0) -> EndToEnd:
    """Replay ``feeds`` of ``rec`` through the embedded pipeline until ``done(progress)``.

    ``end_ts``: after the feeds, announce their end at this event time (:func:`replay.produce.announce_end`:
    the incident stream releases events once its event time passed them).
    """
    ch_dir = workdir / "clickhouse"
    shutil.rmtree(ch_dir, ignore_errors=True)
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        s = Settings(**{**settings.model_dump(), "broker": broker.url, "clickhouse_dsn": f"chdb://{ch_dir}",
                        "data_dir": workdir / "var", "topic_prefix": "bench", "app_id": f"bench-{feeds[0]}"})
        pipe = build(s, Role.all)
        worker = worker_of(pipe)
        result: dict[str, Any] = {}

        @pipe.app.task
        async def drive() -> None:
            try:
                with console.status(f"end to end: {what} through the embedded stack ..."):
                    result["run"] = await _drive(pipe, rec, broker.bootstrap, feeds, end_ts, progress_sql, done,
                                                 rows_sql, timeout_s)
            except Exception as exc:  # noqa: BLE001 - reported after the worker stopped
                result["error"] = exc
            worker._schedule_shutdown(signal.SIGTERM)

        run_in_process(pipe, worker)
    if "run" not in result:
        raise RuntimeError(f"benchmark failed: {result.get('error')!r}")
    return result["run"]


async def _drive(pipe: Pipeline, rec: Recording, bootstrap: str, feeds: list[str], end_ts: int | None,
                 progress_sql: str, done: Callable[[tuple[Any, ...]], bool], rows_sql: str,
                 timeout_s: float) -> EndToEnd:
    assert pipe.clickhouse is not None
    while not pipe.app.consumer.assignment() or pipe.app.rebalancing:
        await asyncio.sleep(0.1)
    s = pipe.settings

    def produce() -> float:
        t = time.perf_counter()
        stats = produce_recording(bootstrap, rec.merged(feeds), lambda feed: s.topic(FEEDS[feed]), speed=None)
        if end_ts is not None:
            announce_end(bootstrap, feeds, lambda feed: s.topic(FEEDS[feed]), s.partitions, end_ts, stats)
        return time.perf_counter() - t

    t0 = time.perf_counter()
    produce_s = await asyncio.to_thread(produce)
    while True:  # plain counts are cheap: they share the ClickHouse thread with the sinks
        stored = await pipe.clickhouse.acall(lambda c: tuple(c.query(progress_sql).result_rows[0]))
        if done(stored):
            break
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"only {stored} stored after {timeout_s:.0f} s")
        await asyncio.sleep(0.5)
    total_s = time.perf_counter() - t0
    rows = await pipe.clickhouse.acall(lambda c: tuple(c.query(rows_sql).result_rows[0]))
    return EndToEnd(produce_s, total_s, rows)
