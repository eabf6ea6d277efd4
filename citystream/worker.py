"""Run a citystream worker: topics, ClickHouse, metrics endpoint, Faust worker with a bounded shutdown."""

from __future__ import annotations

import gc

__all__ = ["BoundedWorker", "StartupError", "build", "run_worker"]

import logging
import os
import signal
import sys
import threading
from typing import Any

import faust
from clickhouse_connect.driver.exceptions import ClickHouseError
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from citystream.config import Role, Settings
from sinks.clickhouse import ClickHouse
from sinks.metrics import Metrics
from streams.app import Pipeline, create_pipeline
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


class BoundedWorker(faust.Worker):
    """A Faust worker whose shutdown cannot hang.

    A worker waiting on an unacked message or a blocked ClickHouse insert could otherwise hang on SIGTERM.
    After ``shutdown_timeout`` seconds the process exits hard; anything not committed is re-delivered to
    the next worker, and idempotent sinks make that safe.
    """

    def __init__(self, *args: Any, shutdown_timeout: float = 8.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shutdown_timeout = shutdown_timeout
        # Faust builds a terminal spinner whatever ``quiet`` says, and at a log level of WARNING or above its
        # handler sets the root logger to DEBUG: every debug call of aiokafka and Faust then builds a LogRecord
        # that the handlers drop (~5% of a bike worker's CPU). No spinner: the root logger keeps the level.
        self.spinner = None

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            threading.Thread(target=self._watchdog, name="shutdown-watchdog", daemon=True).start()
        super()._schedule_shutdown(signal)

    def _watchdog(self) -> None:
        threading.Event().wait(self.shutdown_timeout)
        sys.stderr.write(f"citystream: shutdown took over {self.shutdown_timeout:.0f}s; exiting now\n")
        sys.stderr.flush()
        os._exit(0)


class StartupError(RuntimeError):
    """A worker cannot start: what it could not reach or read, and the setting that names it (the command line
    prints this message, not a traceback; ``--log-level debug`` logs the traceback too)."""


def build(settings: Settings, role: Role, registry: CollectorRegistry | None = None) -> Pipeline:
    """Create topics, open ClickHouse (for sink roles) and build the pipeline for ``role``; :class:`StartupError`
    if the broker or ClickHouse cannot be reached, or a configured file (geography, fences) cannot be read."""
    try:
        (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _startup(f"cannot create the data directory {settings.data_dir} (CITYSTREAM_DATA_DIR)", exc) from exc
    try:
        ensure_topics(settings)
    except KafkaError as exc:
        raise _startup(f"cannot list or create the topics on the Kafka broker at {settings.broker_bootstrap} "
                       "(CITYSTREAM_BROKER; CITYSTREAM_PARTITIONS, CITYSTREAM_REPLICATION)", exc) from exc
    clickhouse = None
    if role in (Role.sinks, Role.all):
        password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None
        clickhouse = ClickHouse(settings.clickhouse_dsn, password, max_retries=settings.sink_max_retries)
        try:
            clickhouse.setup()
        except (ClickHouseError, OSError) as exc:
            clickhouse.close()
            raise _startup(f"cannot open ClickHouse at {_without_password(settings.clickhouse_dsn)} "
                           "(CITYSTREAM_CLICKHOUSE_DSN) and apply its migrations", exc) from exc
    metrics = Metrics.create(registry or CollectorRegistry())
    try:
        return create_pipeline(settings, role, metrics=metrics, clickhouse=clickhouse)
    except (OSError, ValueError) as exc:  # the geography and fence files are read here (they name themselves)
        if clickhouse is not None:
            clickhouse.close()
        raise _startup("cannot build the pipeline from its configuration (CITYSTREAM_GEOGRAPHY, "
                       "CITYSTREAM_FENCES_CSV, ...)", exc) from exc


def _startup(what: str, exc: BaseException) -> StartupError:
    log.debug("%s", what, exc_info=exc)
    name, detail = type(exc).__name__, " ".join(str(exc).split())
    if not detail.startswith(name):  # kafka-python's errors name themselves
        detail = f"{name}: {detail}" if detail else name
    return StartupError(f"{what}: {detail}")


def _without_password(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``.

    >>> _without_password("http://citystream:s3cret@clickhouse:8123/citystream"), _without_password("chdb://./var")
    ('http://citystream:***@clickhouse:8123/citystream', 'chdb://./var')
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def worker_of(pipe: Pipeline) -> BoundedWorker:
    """The worker of ``pipe``: its settings' log level and shutdown bound, and quiet (no startup banner; no
    spinner either, see :class:`BoundedWorker`)."""
    s = pipe.settings
    return BoundedWorker(pipe.app, loglevel=s.log_level, shutdown_timeout=s.shutdown_timeout_s, quiet=True)


def run_in_process(pipe: Pipeline, worker: BoundedWorker) -> None:
    """Run ``worker`` here until it stops (an app task schedules the shutdown when its work is done), then
    close ClickHouse; Faust's exit at the end of the run is caught so the caller goes on (demo, benchmarks)."""
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    finally:
        if pipe.clickhouse is not None:
            pipe.clickhouse.close()


def tune_gc() -> None:
    """Garbage collection for a long-running stream worker: what exists after start-up (modules, geography,
    models) is frozen out of every collection, and the youngest generation is collected every 50,000 net
    allocations rather than 700, so a batch of records does not set off a cascade of collections walking
    the whole heap. Cycles are still collected; reference counting frees the rest as before.

    ``citystream worker`` disables the collector before its imports: start-up builds what lives for the whole
    run, and with the default thresholds it set off ~10 full collections of the growing heap (~1 s of a
    worker's start-up, measured with ``gc.callbacks``). This collects once and turns it back on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    gc.enable()


def run_worker(settings: Settings, role: Role) -> None:
    """Run until SIGTERM/SIGINT (never returns normally: Faust exits the process)."""
    registry = CollectorRegistry()
    pipe = build(settings, role, registry)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0", registry=registry)  # noqa: S104 - scraped by Prometheus
    worker = worker_of(pipe)
    tune_gc()
    try:
        worker.execute_from_commandline()
    finally:
        if pipe.clickhouse is not None:
            pipe.clickhouse.close()
