"""Worker processes seen from outside, for the benchmarks and the integration tests: start a real
``citystream worker`` process, read its Prometheus metrics, wait on them, spot a crashed agent, stop it; and
read an embedded ClickHouse (chDB) from a short-lived process, since a chDB data directory belongs to one
process at a time (read it after the workers stopped).
"""

from __future__ import annotations

__all__ = ["Metrics", "WorkerProcess", "cpu_seconds", "metric_sum", "query_chdb", "scrape"]

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: Samples by ``(name, sorted labels)``.
Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]

_READER = """
import sys, json
from sinks.clickhouse import connect
client = connect(sys.argv[1])
out = [[[v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for v in row]
        for row in client.query(q).result_rows] for q in json.loads(sys.stdin.read())]
client.close()
print(json.dumps(out))
"""


def query_chdb(dsn: str, queries: list[str], timeout_s: float = 120.0) -> list[list[list[Any]]]:
    """The rows of each query, read by a separate process (no worker may hold the data directory)."""
    out = subprocess.run([sys.executable, "-c", _READER, dsn], input=json.dumps(queries), capture_output=True,
                         text=True, timeout=timeout_s, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def scrape(port: int) -> Metrics:
    """Every sample a worker's ``/metrics`` serves on 127.0.0.1:``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def metric_sum(m: Metrics, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry ``labels``."""
    return sum(v for (n, lbl), v in m.items() if n == name and all((k, x) in lbl for k, x in labels.items()))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far (Linux ``/proc``; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@dataclass
class WorkerProcess:
    """One ``citystream worker`` process, its metrics port and its log file."""

    proc: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    @classmethod
    def start(cls, role: str, env: Mapping[str, str], log: Path, metrics_port: int) -> WorkerProcess:
        """Start ``citystream worker --role role`` with exactly ``env`` (``CITYSTREAM_METRICS_PORT`` is set to
        ``metrics_port``), its output in ``log``."""
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "citystream.cli", "worker", "--role", role],
                env={**env, "CITYSTREAM_METRICS_PORT": str(metrics_port)}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return cls(proc, metrics_port, log)

    def metrics(self) -> Metrics:
        return scrape(self.metrics_port)

    def metric_sum(self, name: str, **labels: str) -> float:
        """:func:`metric_sum` of the current metrics (0 while the worker does not answer)."""
        try:
            return metric_sum(self.metrics(), name, **labels)
        except OSError:
            return 0.0

    def wait(self, predicate: Callable[[WorkerProcess], bool], timeout: float = 90.0,
             what: str = "condition") -> None:
        """Poll ``predicate`` until it holds; AssertionError if the worker exits, an agent crashes or time runs out."""
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
                     others: tuple[WorkerProcess, ...] = ()) -> None:
        """Wait until each sink (of this worker) wrote at least the given rows and then, for ``stable_s``, this
        worker and ``others`` are :meth:`settled`."""
        since: list[float] = []

        def ok(w: WorkerProcess) -> bool:
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

    def peak_rss_mb(self) -> float:
        """Peak resident memory in MB (Linux ``VmHWM``; 0 where unavailable or gone)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def tail(self, n: int = 3000) -> str:
        return self.log.read_bytes()[-n:].decode("utf-8", "replace")
