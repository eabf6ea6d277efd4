"""Helpers for integration tests on the embedded stack: one isolated pipeline (topics, groups, chDB dir) per test.

Workers run as real ``citystream worker`` processes (so tests can SIGTERM or SIGKILL them), seen through
``citystream.workers`` (metrics, waits, crash detection), which the benchmarks use too; ClickHouse (chDB) is
read by a separate short-lived process after the workers stopped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from citystream.embedded import free_port
from citystream.workers import WorkerProcess as Worker
from citystream.workers import query_chdb

__all__ = ["Stack", "Worker"]


@dataclass
class Stack:
    """One isolated pipeline on the shared test broker: its own topics, consumer groups and chDB dir."""

    broker_url: str
    bootstrap: str
    tmp: Path
    prefix: str
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return f"chdb://{self.tmp / 'clickhouse'}"

    def topic(self, short: str) -> str:
        return f"{self.prefix}.{short}"

    def env(self, metrics_port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "CITYSTREAM_BROKER": self.broker_url,
            "CITYSTREAM_CLICKHOUSE_DSN": self.dsn,
            "CITYSTREAM_TOPIC_PREFIX": self.prefix,
            "CITYSTREAM_APP_ID": self.prefix,
            "CITYSTREAM_PARTITIONS": str(self.partitions),
            "CITYSTREAM_METRICS_PORT": str(metrics_port),
            "CITYSTREAM_DATA_DIR": str(self.tmp / "var"),
            "CITYSTREAM_SESSION_TIMEOUT_S": "4",
            "CITYSTREAM_MONITOR_INTERVAL_S": "0.5",
            "CITYSTREAM_BATCH_WITHIN_S": "0.1",
            "CITYSTREAM_SINK_WITHIN_S": "0.2",
            "CITYSTREAM_LOG_LEVEL": "info",
        })
        env.update(self.extra_env)
        return env

    def start_worker(self, role: str = "all", **env: str) -> Worker:
        """Start a ``citystream worker --role role``; ``env`` adds or overrides environment variables."""
        port = free_port()
        worker = Worker.start(role, {**self.env(port), **env}, self.tmp / f"worker-{role}-{time.monotonic_ns()}.log",
                              port)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        """Kill every worker this stack started that is still running (a failed test must not leak them)."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)

    def query(self, *sql: str) -> list[list[list[object]]]:
        """Run queries against this stack's chDB in a separate process (no worker may be running)."""
        return query_chdb(self.dsn, list(sql))
