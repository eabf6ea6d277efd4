"""Helpers for integration tests on the embedded stack: a worker process, its metrics, ClickHouse reads.

Workers run as real ``citystream worker`` processes (so tests can SIGTERM or SIGKILL them); ClickHouse
(chDB) is read by a separate short-lived process after the worker stopped, because a chDB data directory
belongs to one process at a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from citystream.embedded import free_port

_READER = """
import sys, json, clickhouse_connect
from sinks.clickhouse import connect
client = connect(sys.argv[1])
out = []
for sql in json.loads(sys.stdin.read()):
    r = client.query(sql)
    out.append([list(map(lambda v: v if isinstance(v, (int, float, str, bool, type(None))) else str(v), row))
                for row in r.result_rows])
client.close()
print(json.dumps(out))
"""


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
        log = open(self.tmp / f"worker-{role}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "citystream.cli", "worker", "--role", role],
            env={**self.env(port), **env}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        worker = Worker(proc, port, Path(log.name))
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
        out = subprocess.run(
            [sys.executable, "-c", _READER, self.dsn], input=json.dumps(list(sql)), capture_output=True,
            text=True, timeout=120, check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric_sum(self, name: str, **labels: str) -> float:
        try:
            m = self.metrics()
        except OSError:
            return 0.0
        return sum(v for (n, lbl), v in m.items() if n == name and all((k, v2) in lbl for k, v2 in labels.items()))

    def wait(self, predicate: Callable[[Worker], bool], timeout: float = 90.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}) waiting for {what}; log: {self.tail()}")
            if crash := self.crashed():  # a crashed agent stops acking: "idle" would pass for drained
                raise AssertionError(f"an agent crashed waiting for {what}: {crash}")
            try:
                if predicate(self):
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; log: {self.tail()}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait(lambda w: w.metric_sum("citystream_assigned_partitions") > 0, timeout, "partition assignment")

    def wait_drained(self, table_rows: dict[str, int], timeout: float = 120.0, stable_s: float = 2.0,
                     others: tuple[Worker, ...] = ()) -> None:
        """Wait until each sink (of this worker) wrote at least the given rows and then, for ``stable_s``, this
        worker and ``others`` are :meth:`settled`."""
        since: list[float] = []

        def ok(w: Worker) -> bool:
            done = all(w.metric_sum("citystream_sink_rows_total", table=t) >= n for t, n in table_rows.items())
            if done and all(x.settled() for x in [w, *others]):
                since.append(time.monotonic())
                return since[-1] - since[0] >= stable_s
            since.clear()
            return False

        self.wait(ok, timeout, f"sinks to drain {table_rows}")

    def settled(self) -> bool:
        """Every consumer lag is 0, or the worker finished no message for 3 s (a Faust commit can stall after
        all work is done: docs/architecture.md)."""
        return self.metric_sum("citystream_consumer_lag") == 0 or self.metric_sum("citystream_idle_seconds") >= 3

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Send ``sig`` and wait; returns the seconds the process took to exit."""
        t = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        return time.monotonic() - t

    def crashed(self) -> str | None:
        """The first ``Crashed reason=`` line Faust logged for an agent, if any."""
        try:
            text = self.log.read_text("utf-8", "replace")
        except OSError:
            return None
        return next((line[-400:] for line in text.splitlines() if "Crashed reason=" in line), None)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_bytes()[-n:].decode("utf-8", "replace")
