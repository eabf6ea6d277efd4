"""ClickHouse access for sinks and queries: one client per process, on one dedicated thread.

The same code talks to chDB in-process (``chdb:///path``) and to a ClickHouse server over HTTP. chDB opens a
data directory from one process only and has no async client, so every call runs on a single worker thread
and the event loop never blocks. clickhouse-connect deliberately does not retry inserts: the retry policy is
here, explicit and bounded.
"""

from __future__ import annotations

__all__ = ["ClickHouse", "SinkBackpressure", "SinkRejected", "connect"]

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DataError, OperationalError, ProgrammingError

log = logging.getLogger(__name__)
T = TypeVar("T")

EMBEDDED_DATABASE = "citystream"


class SinkBackpressure(Exception):
    """ClickHouse is unavailable or pushing back: retry the same batch after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkRejected(Exception):
    """ClickHouse refused the rows themselves (bad data or schema): retrying cannot help."""


def connect(dsn: str, password: str | None = None) -> Any:
    """A clickhouse-connect client for ``dsn``; creates the database if missing.

    ``chdb:///path`` runs the engine in-process with data under ``path`` (database ``citystream``);
    ``http(s)://user:pass@host:port/db`` connects to a server.
    """
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        path = Path(parts.netloc + parts.path).resolve()  # chdb:///abs/path or chdb://./relative/path
        path.mkdir(parents=True, exist_ok=True)
        client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        client.command(f"CREATE DATABASE IF NOT EXISTS {EMBEDDED_DATABASE}")
        client.database = EMBEDDED_DATABASE
        return client
    database = parts.path.strip("/") or "default"
    kwargs: dict[str, Any] = {"dsn": dsn.replace(parts.path, "") if parts.path else dsn}
    if password:
        kwargs["password"] = password
    admin = clickhouse_connect.get_client(**kwargs)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    admin.close()
    return clickhouse_connect.get_client(database=database, **kwargs)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | TimeoutError | ConnectionError)


class ClickHouse:
    """The process's ClickHouse: a client on one thread, with an explicit insert retry policy.

    Parameters
    ----------
    dsn, password
        Where to connect (see :func:`connect`).
    max_retries
        Attempts after the first for transient errors, with capped exponential backoff; past that the
        caller gets :class:`SinkBackpressure` and retries the identical batch later.
    backoff_s, backoff_cap_s
        First retry delay and its cap.
    """

    def __init__(
        self, dsn: str, password: str | None = None, *, max_retries: int = 8, backoff_s: float = 0.2,
        backoff_cap_s: float = 5.0, client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.dsn = dsn
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self._factory = client_factory or (lambda: connect(dsn, password))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.client: Any = None

    def setup(self) -> None:
        """Create the client (on the ClickHouse thread) and apply pending migrations."""
        from sinks.schema import migrate

        def _setup() -> None:
            self.client = self._factory()
            applied = migrate(self.client)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))

        self._executor.submit(_setup).result()

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)`` on the ClickHouse thread and wait (for synchronous callers)."""
        return self._executor.submit(fn, self.client).result()

    async def acall(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)`` on the ClickHouse thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self.client)

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a query."""
        result = self.call(lambda c: c.query(sql, parameters=parameters))
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def insert_blocking(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str],
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Insert column-oriented data with the retry policy (run on the ClickHouse thread)."""
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                self.client.insert(table, list(columns), column_names=list(names), column_oriented=True)
                return
            except (DataError, ProgrammingError, ValueError, TypeError) as exc:
                raise SinkRejected(f"{table}: {exc}"[:500]) from exc
            except Exception as exc:  # noqa: BLE001 - classified below
                if not _transient(exc) and "chdb" not in type(exc).__module__:
                    raise SinkRejected(f"{table}: {exc}"[:500]) from exc
                if attempt == self.max_retries:
                    raise SinkBackpressure(f"{table}: {exc}"[:500], retry_after=self.backoff_cap_s) from exc
                if on_retry:
                    on_retry(exc)
                log.warning("insert into %s failed (%s), retry %d in %.1fs", table, exc, attempt + 1, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_cap_s)

    async def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str],
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Async :meth:`insert_blocking`."""
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self.insert_blocking, table, columns, names, on_retry
        )

    def close(self) -> None:
        """Close the client and stop the thread."""
        if self.client is not None:
            client, self.client = self.client, None
            self._executor.submit(client.close).result()
        self._executor.shutdown(wait=True)
