"""Replay-side commands of ``citystream``: record, replay, simulate and importers."""

from __future__ import annotations

__all__ = ["register"]

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from citystream.config import Settings
from models.timefmt import ms_to_iso, parse_ts_ms
from streams.topics import FEEDS

console = Console()
err = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console)


def _time_option(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_ts_ms(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (use ISO-8601 with an offset, e.g. 2026-11-02T08:00:00+08:00)") from None


def register(app: typer.Typer, settings_of: typer.models.CommandFunctionType) -> None:  # type: ignore[name-defined]
    """Add the replay-side commands to ``app``; ``settings_of(**overrides)`` builds :class:`Settings`."""

    @app.command()
    def replay(
        recording: Annotated[Path, typer.Argument(help="Recording directory (with manifest.json).")],
        speed: Annotated[str, typer.Option(help="1 = real time, 60 = 60x faster, max = as fast as the broker takes it.")] = "max",
        from_: Annotated[str | None, typer.Option("--from", help="Start at this event time (ISO-8601 with offset).")] = None,
        to: Annotated[str | None, typer.Option(help="Stop before this event time.")] = None,
        loop: Annotated[int, typer.Option(help="Play the recording this many times, event times shifted each pass; 0 = forever.")] = 1,
        feeds: Annotated[str | None, typer.Option(help="Comma-separated feeds to replay (default: all).")] = None,
        broker_url: Annotated[str | None, typer.Option("--broker", help="Kafka URL (CITYSTREAM_BROKER).")] = None,
        end_heartbeat: Annotated[bool, typer.Option(
            help="After a finite replay, announce the end of its event time (--to, or the recording's last event) "
                 "with a heartbeat on every partition of incident.events, so the case stream releases the last "
                 "cases instead of waiting for later events.")] = True,
    ) -> None:
        """Produce a recording into Kafka: keys kept, each message timestamped with its event time, the recorded
        inter-arrival timing kept (scaled by --speed). Streams the files: memory stays flat on any size."""
        from replay.produce import ReplayStats, announce_end, produce_recording
        from replay.recording import Recording, RecordingError
        from streams.topics import ensure_topics

        settings: Settings = settings_of(broker=broker_url)
        try:
            rec = Recording.open(recording)
        except (RecordingError, FileNotFoundError) as exc:
            err.print(f"[red]cannot open recording:[/] {exc}")
            raise typer.Exit(2) from None
        chosen = [f.strip() for f in feeds.split(",")] if feeds else None
        if chosen and (unknown := set(chosen) - set(rec.feeds)):
            raise typer.BadParameter(f"unknown feed(s) {sorted(unknown)}; this recording has {list(rec.feeds)}")
        factor = None if speed == "max" else float(speed)
        if factor is not None and factor <= 0:
            raise typer.BadParameter("speed must be > 0 or max")
        ensure_topics(settings)
        total = rec.records if loop == 1 and not (from_ or to or chosen) else None
        with _progress() as progress:
            task = progress.add_task("replay", total=total, info="")

            def on_progress(stats: ReplayStats) -> None:
                rate = stats.total / stats.seconds if stats.seconds else 0.0
                pos = ms_to_iso(stats.last_ts) if stats.last_ts else "-"
                progress.update(task, completed=stats.total, info=f"{rate:,.0f} msg/s · event time {pos}")

            stats = produce_recording(
                settings.broker_bootstrap, rec.merged(chosen, _time_option(from_), _time_option(to)),
                lambda feed: settings.topic(FEEDS[feed]), speed=factor, loop_count=loop or None,
                progress=on_progress,
            )
        if end_heartbeat and loop == 1 and stats.last_ts is not None:
            end_ts = _time_option(to) or rec.last_ts or stats.last_ts  # --to is exclusive: all before it was sent
            announce_end(settings.broker_bootstrap, chosen or rec.feeds, lambda feed: settings.topic(FEEDS[feed]),
                         settings.partitions, end_ts, stats)
        rate = stats.total / stats.seconds if stats.seconds else 0.0
        console.print(f"replayed {stats.total:,} messages in {stats.seconds:.1f}s ({rate:,.0f} msg/s) to "
                      + ", ".join(f"{t} {n:,}" for t, n in sorted(stats.sent.items())))

    @app.command()
    def record(
        out: Annotated[Path, typer.Option(help="Directory of the new recording.")],
        topics: Annotated[str, typer.Option(help="Comma-separated feeds: bike_gps, sensor_telemetry, incident_events.")] = "bike_gps,sensor_telemetry,incident_events",
        duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
        max_records: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
        from_beginning: Annotated[bool, typer.Option(help="Start at the oldest retained message instead of now.")] = False,
        idle_stop: Annotated[float | None, typer.Option(help="Stop after this many seconds without a message.")] = None,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing recording in --out.")] = False,
        broker_url: Annotated[str | None, typer.Option("--broker", help="Kafka URL (CITYSTREAM_BROKER).")] = None,
    ) -> None:
        """Capture live input topics into a recording (Ctrl-C stops cleanly and keeps what was captured)."""
        from replay.record import RecordStats, record_topics

        settings: Settings = settings_of(broker=broker_url)
        names = [t.strip() for t in topics.split(",") if t.strip()]
        if unknown := [n for n in names if n not in FEEDS]:
            raise typer.BadParameter(f"unknown feed(s) {unknown}; choose from {sorted(FEEDS)}")
        stop = threading.Event()
        with _progress() as progress:
            task = progress.add_task("record", total=max_records, info="")

            def on_progress(stats: RecordStats) -> None:
                progress.update(task, completed=stats.total, info=f"{stats.seconds:.0f}s")

            try:
                stats = record_topics(
                    settings.broker_bootstrap, {n: settings.topic(FEEDS[n]) for n in names}, out,
                    from_beginning=from_beginning, duration_s=duration, max_records=max_records,
                    idle_stop_s=idle_stop, progress=on_progress, should_stop=stop.is_set, overwrite=overwrite,
                )
            except (ValueError, FileExistsError) as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(2) from None
        console.print(f"recorded {stats.total:,} messages in {stats.seconds:.1f}s into {out}: {stats.records}")

    @app.command()
    def simulate(
        out: Annotated[Path, typer.Option(help="Directory of the new recording (with ground_truth and geography).")],
        hours: Annotated[float, typer.Option(help="Event-time length of the feed.")] = 1.0,
        bikes: Annotated[int, typer.Option(help="Fleet size (Xiamen caps it near 150,000).")] = 2000,
        sensors: Annotated[int, typer.Option(help="IoT sensors of all kinds.")] = 100,
        incidents_per_hour: Annotated[float, typer.Option(help="New city-management cases per hour.")] = 20.0,
        seed: Annotated[int, typer.Option(help="Random seed: the same seed and options give byte-identical output.")] = 7,
        start: Annotated[str, typer.Option(help="Event time of the first record (ISO-8601 with offset).")] = "2026-11-02T00:00:00Z",
        fences: Annotated[Path | None, typer.Option(help="DCIC fence CSV (FENCE_ID,FENCE_LOC) to use real parking fences.")] = None,
        gps_interval: Annotated[int, typer.Option(help="Seconds between fixes of a riding bike.")] = 30,
        batched: Annotated[bool, typer.Option(help="Emit GPS as operator batches instead of one message per fix.")] = False,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing recording in --out.")] = False,
    ) -> None:
        """Generate a deterministic Xiamen-like city: bikes (incl. black and zombie bikes), sensors with injected
        anomalies, incidents through the case lifecycle — plus ground truth for scoring the detectors."""
        from replay.simulate import simulate as run_simulation

        start_dt = datetime.fromtimestamp(_time_option(start) / 1000, tz=UTC)  # type: ignore[operator]
        with _progress() as progress:
            task = progress.add_task("simulate", total=int(hours * 3600), info="event seconds")
            try:
                summary = run_simulation(
                    out, hours=hours, bikes=bikes, sensors=sensors, seed=seed, start=start_dt,
                    incidents_per_hour=incidents_per_hour, fences=fences, gps_interval_s=gps_interval,
                    batch_operator_fixes=batched, progress=lambda s: progress.update(task, completed=s),
                    overwrite=overwrite,
                )
            except FileExistsError as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(2) from None
        console.print(str(summary))

    imp = typer.Typer(help="Import real open data into a recording.", no_args_is_help=True)
    app.add_typer(imp, name="import")

    @imp.command("dcic")
    def import_dcic_cmd(
        files: Annotated[list[Path], typer.Argument(help="DCIC 2021 CSV files: lock/unlock orders or GPS tracks.")],
        out: Annotated[Path, typer.Option(help="Directory of the new recording.")],
        operator: Annotated[str, typer.Option(help="Operator to put on every fix (DCIC does not say). The default, "
                                                   "unknown, is CITYSTREAM_BIKE_UNATTRIBUTED_OPERATOR: its bikes are "
                                                   "counted, never black bikes, with no quota. Another one not in "
                                                   "CITYSTREAM_BIKE_OPERATORS makes every bike a black_bike "
                                                   "violation; a registered one (e.g. meituan) has its fleet "
                                                   "quota applied to all of them.")] = "unknown",
        overwrite: Annotated[bool, typer.Option(help="Replace an existing recording in --out.")] = False,
    ) -> None:
        """Xiamen shared-bike data (DCIC 2021, Asia/Shanghai local times) into the bike_gps feed, sorted by event time."""
        from replay.importers import import_dcic

        with _progress() as progress:
            task = progress.add_task("import", total=None, info="rows")
            summary = import_dcic(files, out, operator=operator, overwrite=overwrite,
                                  progress=lambda n: progress.advance(task, n))
        console.print(str(summary))

    @imp.command("series")
    def import_series_cmd(
        file: Annotated[Path, typer.Argument(help="CSV time series: timestamp,value[,...] (NAB, SKAB, ...).")],
        out: Annotated[Path, typer.Option(help="Directory of the new recording.")],
        sensor_id: Annotated[str, typer.Option(help="Sensor id to give the readings.")],
        kind: Annotated[str, typer.Option(help="Sensor kind, e.g. drainage_level (see docs/schemas.md).")],
        metric: Annotated[list[str] | None, typer.Option(help="column=metric mapping, repeatable (default: all numeric columns).")] = None,
        tz: Annotated[str, typer.Option(help="Time zone of naive timestamps.")] = "UTC",
        overwrite: Annotated[bool, typer.Option(help="Replace an existing recording in --out.")] = False,
    ) -> None:
        """A CSV time series into the sensor_telemetry feed; label columns become ground truth in the manifest."""
        from replay.importers import import_series

        mapping = dict(m.split("=", 1) for m in metric) if metric else None
        with _progress() as progress:
            task = progress.add_task("import", total=None, info="rows")
            summary = import_series(file, out, sensor_id=sensor_id, kind=kind, metrics=mapping, tz=tz,
                                    overwrite=overwrite, progress=lambda n: progress.advance(task, n))
        console.print(str(summary))


def register_bench(bench_app: typer.Typer) -> None:
    """``citystream bench replay``: replay and simulate throughput."""

    @bench_app.command("replay")
    def bench_replay(
        bikes: Annotated[int, typer.Option(help="Fleet size of the simulated recording.")] = 5000,
        hours: Annotated[float, typer.Option(help="Event-time length of the simulated recording.")] = 0.5,
        sensors: Annotated[int, typer.Option(help="Sensors in the simulated recording.")] = 200,
        batched: Annotated[bool, typer.Option(help="GPS as operator batches instead of one fix per message.")] = False,
        workdir: Annotated[Path | None, typer.Option(help="Where to write the recording (default: a temp dir, removed at the end).")] = None,
    ) -> None:
        """Simulate a recording (simulate throughput), then replay it at --speed max into the embedded broker
        (replay throughput, messages/s acknowledged by Tansu). Prints one table of figures from this run."""
        import time

        from rich.table import Table

        from citystream.embedded import TansuBroker, scratch_dir
        from replay.produce import produce_recording
        from replay.recording import Recording
        from replay.simulate import simulate as run_simulation

        out = (workdir or scratch_dir("citystream-bench-")) / "rec"  # scratch: removed when the command ends
        console.print(f"simulating {bikes:,} bikes, {sensors:,} sensors, {hours} h ...")
        summary = run_simulation(out, hours=hours, bikes=bikes, sensors=sensors, seed=1, batch_operator_fixes=batched,
                                 overwrite=True)
        rec = Recording.open(out)
        with TansuBroker() as broker:
            settings = Settings(broker=broker.url, topic_prefix="bench")
            from streams.topics import ensure_topics

            ensure_topics(settings)
            t = time.perf_counter()
            stats = produce_recording(broker.bootstrap, rec.merged(), lambda feed: settings.topic(FEEDS[feed]))
            replay_s = time.perf_counter() - t
        table = Table(title="citystream bench replay", title_justify="left")
        for c in ("figure", "value"):
            table.add_column(c)
        table.add_row("recording", f"{rec.records:,} messages ({summary.fixes:,} GPS fixes), {hours} h event time")
        table.add_row("simulate", f"{summary.messages_per_s:,.0f} messages/s ({summary.fixes_per_s:,.0f} fixes/s)")
        table.add_row("replay --speed max into Tansu", f"{stats.total / replay_s:,.0f} messages/s ({stats.total:,} in {replay_s:.1f} s)")
        console.print(table)
