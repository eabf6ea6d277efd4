"""Batching ClickHouse sink: buffer per topic-partition, flush deterministically, retry, give up to dead letters.

The shape follows quix-streams' ``BatchingSink``: :meth:`add` buffers rows with where they came from,
:meth:`flush` cuts one batch (topic-partitions in order, offsets in order — so a retry sends identical rows)
and calls :meth:`write`, the only method that touches ClickHouse, and clears the buffers in ``finally``.
The caller acknowledges (commits) the source offsets only after :meth:`flush` returned.
"""

from __future__ import annotations

__all__ = ["BatchingSink", "Columns", "Rejected"]

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinks.clickhouse import ClickHouse, SinkBackpressure, SinkRejected
from sinks.metrics import Metrics

log = logging.getLogger(__name__)


class Columns:
    """Rows given column by column (one sequence per column, of equal lengths). When every part of a batch
    comes this way, :meth:`BatchingSink.cut` only concatenates columns: no tuple is built per row. A column
    that is a numpy array in every part stays one (clickhouse-connect writes a numeric array's bytes at once,
    where a list is converted value by value)."""

    __slots__ = ("values",)

    def __init__(self, *values: Sequence[Any] | np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0


@dataclass(frozen=True)
class Rejected:
    """Rows ClickHouse refused for good, and where they came from (for the dead-letter path)."""

    table: str
    reason: str
    sources: list[tuple[str, int, int]]


class BatchingSink:
    """Buffer rows for one table and insert them in batches.

    Parameters
    ----------
    clickhouse
        The process's :class:`~sinks.clickhouse.ClickHouse`.
    table, columns
        Target table and the column names of every row tuple.
    metrics
        Worker metrics.
    on_reject
        Awaited with a :class:`Rejected` when ClickHouse refuses a batch (bad data or schema): the give-up
        path, e.g. sending the source records to the dead-letter topic. Backpressure (ClickHouse down) is
        not a rejection: the same batch is retried until it goes in or the worker stops.
    """

    def __init__(
        self, clickhouse: ClickHouse, table: str, columns: Sequence[str], metrics: Metrics,
        on_reject: Callable[[Rejected], Awaitable[None]] | None = None,
    ) -> None:
        self.clickhouse = clickhouse
        self.table = table
        self.columns = tuple(columns)
        self.metrics = metrics
        self.on_reject = on_reject
        for counter in (metrics.sink_rows, metrics.sink_retries, metrics.sink_failures):
            counter.labels(table=table)  # at 0 from the start: the first retry or failure is an increase (alerts)
        self._buffers: dict[tuple[str, int], list[tuple[int, list[tuple[Any, ...]] | Columns]]] = {}

    def add(self, rows: list[tuple[Any, ...]] | Columns, topic: str, partition: int, offset: int) -> None:
        """Buffer the rows (tuples, or :class:`Columns`) made from the message at ``topic``/``partition``/``offset``."""
        self._buffers.setdefault((topic, partition), []).append((offset, rows))

    @property
    def pending(self) -> int:
        """Rows waiting for the next flush."""
        return sum(len(r) for parts in self._buffers.values() for _, r in parts)

    def cut(self) -> tuple[list[Any], list[tuple[str, int, int]]]:
        """The next batch as columns (lists, or numpy arrays where every part gave one), cut deterministically
        (topic-partitions sorted, offsets sorted)."""
        parts: list[Any] = []
        sources = []
        for tp in sorted(self._buffers):
            for offset, part in sorted(self._buffers[tp], key=lambda x: x[0]):
                parts.append(part)
                sources.append((tp[0], tp[1], offset))
        if parts and all(isinstance(p, Columns) for p in parts):
            columns: list[Any] = []
            for i in range(len(self.columns)):
                values = [part.values[i] for part in parts if len(part)]
                if values and all(isinstance(v, np.ndarray) for v in values):
                    columns.append(np.concatenate(values))
                else:
                    columns.append([x for v in values for x in v])
            return columns, sources
        rows = [r for p in parts for r in (zip(*p.values, strict=True) if isinstance(p, Columns) else p)]
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in self.columns]
        return columns, sources

    async def flush(self) -> int:
        """Insert everything buffered; returns the rows written (0 if rejected). Buffers are cleared."""
        try:
            columns, sources = self.cut()
            n = len(columns[0]) if columns else 0
            if n == 0:
                return 0
            try:
                await self.write(columns)
            except SinkRejected as exc:
                self.metrics.sink_failures.labels(table=self.table).inc()
                log.error("ClickHouse rejected %d rows for %s: %s", n, self.table, exc)
                if self.on_reject is not None:
                    await self.on_reject(Rejected(self.table, str(exc), sources))
                return 0
            self.metrics.sink_rows.labels(table=self.table).inc(n)
            self.metrics.sink_batch_rows.labels(table=self.table).observe(n)
            return n
        finally:
            self._buffers.clear()

    async def write(self, columns: list[Any]) -> None:
        """Insert one batch; on backpressure wait ``retry_after`` and send the identical batch again."""
        retries = self.metrics.sink_retries.labels(table=self.table)
        started = time.perf_counter()
        while True:
            try:
                await self.clickhouse.insert(self.table, columns, self.columns, on_retry=lambda _e: retries.inc())
                break
            except SinkBackpressure as exc:
                retries.inc()
                log.warning("ClickHouse unavailable for %s (%s); retrying in %.1fs", self.table, exc, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
        self.metrics.sink_seconds.labels(table=self.table).observe(time.perf_counter() - started)
