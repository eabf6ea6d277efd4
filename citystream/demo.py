"""``citystream demo``: the main job on the embedded stack, in one process.

Start Tansu, create topics, run a ``--role all`` worker with chDB under the data dir, replay a recording
(the bundled sample by default), wait until every consumer has caught up and the sinks have committed,
then print a summary read back from ClickHouse.
"""

from __future__ import annotations

__all__ = ["run_demo", "wait_drained"]

import asyncio
import logging
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from citystream.config import Role, Settings
from citystream.embedded import TansuBroker
from citystream.summary import collect, render
from citystream.worker import build, run_in_process, worker_of
from replay.produce import ReplayStats, announce_end, produce_recording
from replay.recording import Recording
from streams.agents.monitor import consumer_lags, read_to_end
from streams.app import Pipeline
from streams.ingest import ingests
from streams.topics import FEEDS


def drained(pipe: Pipeline, produced: dict[tuple[str, int], int], idle_s: float = 2.0) -> bool:
    """True when every produced message (of topics this app consumes) was read, every partition of every
    topic is read to its end, and the worker has finished no message for ``idle_s`` (all work is done).

    Committed offsets alone are not the test: a Faust commit can lag or stall (see docs/architecture.md)
    although every message was processed and stored.
    """
    consumer: Any = pipe.app.consumer
    consumed = {tp.topic for tp in consumer.assignment()} | {i.topic for i in ingests(pipe)}
    read = {(tp.topic, tp.partition): off for tp, off in consumer._read_offset.items() if off is not None}
    read.update({(tp.topic, tp.partition): off for i in ingests(pipe) for tp, off in i.read.items()})
    if any(read.get(tp, -1) < last for tp, last in produced.items() if tp[0] in consumed):
        return False
    if all(lag == 0 for lag in consumer_lags(pipe).values()):
        return True
    clock = pipe.state.get("ack_clock")
    return read_to_end(pipe) and clock is not None and clock.idle_s() >= idle_s


async def wait_drained(pipe: Pipeline, produced: dict[tuple[str, int], int], *, stable_s: float = 3.0,
                       timeout_s: float = 600.0, tick: Any = None) -> bool:
    """Wait until :func:`drained` has held for ``stable_s`` (downstream topics fill after upstream ones)."""
    since: float | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if tick is not None:
            await tick()
        if drained(pipe, produced):
            since = since or time.monotonic()
            if time.monotonic() - since >= stable_s:
                return True
        else:
            since = None
        await asyncio.sleep(0.5)
    return False


def run_demo(
    settings: Settings, recording: Path, *, speed: float | None = None, serve: bool = False,
    port: int = 0, keep: bool = False, console: Console | None = None,
) -> int:
    """Run the demo; returns the process exit code."""
    console = console or Console()
    # kafka-python (admin calls) warns about its own I/O loop timings; the progress display is enough here.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    rec = Recording.open(recording)
    ch_dir = settings.data_dir / "clickhouse"
    if not keep and ch_dir.exists():
        shutil.rmtree(ch_dir)
    with TansuBroker(port=port, log_path=_log_path(settings)) as broker:
        settings = Settings(**{
            **settings.model_dump(), "broker": broker.url, "clickhouse_dsn": f"chdb://{ch_dir.resolve()}",
        })
        console.print(f"[bold]citystream demo[/] broker [cyan]{broker.bootstrap}[/] (Tansu), "
                      f"ClickHouse [cyan]{ch_dir}[/] (chDB), recording [cyan]{recording}[/] "
                      f"({rec.records:,} messages)")
        pipe = build(settings, Role.all)
        worker = worker_of(pipe)
        outcome: dict[str, Any] = {}

        @pipe.app.task
        async def drive() -> None:
            try:
                outcome["summary"] = await _drive(pipe, broker, rec, speed, console)
                outcome["ok"] = outcome["summary"] is not None
            except Exception as exc:  # noqa: BLE001 - reported after the worker stopped
                outcome["error"] = exc
            if not serve or "error" in outcome:
                worker._schedule_shutdown(signal.SIGTERM)
            else:
                render(console, outcome.pop("summary"))
                console.print(f"[green]Serving[/]: broker {broker.bootstrap}; Ctrl-C to stop.")

        run_in_process(pipe, worker)
    if "error" in outcome:
        console.print(f"[red]demo failed:[/] {outcome['error']!r}")
        return 1
    if outcome.get("summary"):
        render(console, outcome["summary"])
    if not outcome.get("ok") and not serve:
        console.print("[red]demo did not drain in time[/]")
        return 1
    console.print(f"Data kept in {ch_dir}: try [bold]citystream query \"SELECT * FROM v_bike_zone_minute LIMIT 5\"[/]"
                  f" with CITYSTREAM_CLICKHOUSE_DSN=chdb://{ch_dir}")
    return 0


def _log_path(settings: Settings) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.data_dir / "tansu.log"


async def _drive(pipe: Pipeline, broker: TansuBroker, rec: Recording, speed: float | None,
                 console: Console) -> Any:
    assert pipe.clickhouse is not None
    while not pipe.app.consumer.assignment() or pipe.app.rebalancing:
        await asyncio.sleep(0.1)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[info]}"), console=console, transient=False)
    with progress:
        replay_task = progress.add_task("replay", total=rec.records, info="")
        sink_task = progress.add_task("stored", total=None, info="")

        def on_progress(stats: ReplayStats) -> None:
            rate = stats.total / stats.seconds if stats.seconds else 0.0
            progress.update(replay_task, completed=stats.total, info=f"{rate:,.0f} msg/s")

        stats = await asyncio.to_thread(
            produce_recording, broker.bootstrap, rec.merged(), lambda feed: pipe.settings.topic(FEEDS[feed]), speed=speed,
            progress=on_progress,
        )
        if rec.last_ts is not None:  # the recording is over: the case stream may release its last cases
            await asyncio.to_thread(announce_end, broker.bootstrap, rec.feeds, lambda feed: pipe.settings.topic(FEEDS[feed]),
                                    pipe.settings.partitions, rec.last_ts, stats)

        async def tick() -> None:
            rows = await pipe.clickhouse.acall(  # type: ignore[union-attr]
                lambda c: c.query("SELECT (SELECT count() FROM bike_fixes) + (SELECT count() FROM dead_letters)"
                                  " + (SELECT count() FROM bike_zone_minute)").result_rows[0][0])
            lag = sum(consumer_lags(pipe).values())
            progress.update(sink_task, completed=rows, info=f"consumer lag {lag:,}")

        ok = await wait_drained(pipe, stats.end_offsets, tick=tick)
    if not ok:
        return None
    return await pipe.clickhouse.acall(collect)
