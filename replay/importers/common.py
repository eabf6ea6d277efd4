"""What every importer shares: the summary it returns, skip counting, and an external sort.

Importers read public data files whose rows may be out of event-time order, and a recording's
lines must be in event-time order. :func:`sorted_records` sorts with bounded memory: chunks of
``chunk_rows`` are sorted and spilled to temporary files, then merged with :func:`heapq.merge`.
"""

from __future__ import annotations

__all__ = ["ImportSummary", "Record", "SkipLog", "sorted_records", "write_sorted"]

import heapq
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import orjson

from replay.recording import RecordingWriter

# (event time ms, input sequence number, key, value text). The value is str, not orjson's bytes:
# orjson.dumps returns bytes with a ~4 KiB allocation each, which sorting 200k of them would hold.
Record = tuple[int, int, str, str]
_MAX_EXAMPLES = 10


@dataclass
class SkipLog:
    """Counts rows an importer could not use, by reason, and keeps the first few as examples."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str, text: str) -> None:
        self.counts[reason] += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}: {text[:200]!r}")


@dataclass
class ImportSummary:
    """The result of an import, for the caller to print (``str(summary)``) or check.

    Example
    -------
    >>> s = ImportSummary(Path("rec"), "bike_gps", rows_read=3, records=2,
    ...                   skipped={"bad_time": 1}, first_ts=0, last_ts=60_000, elapsed_s=0.01)
    >>> print(s)  # doctest: +ELLIPSIS
    rec: bike_gps 2 records from 3 rows ... skipped 1 (bad_time: 1)
    """

    out: Path
    feed: str
    rows_read: int
    records: int
    skipped: dict[str, int]
    first_ts: int | None
    last_ts: int | None
    elapsed_s: float
    examples: list[str] = field(default_factory=list)

    @property
    def skipped_rows(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()))
        head = (
            f"{self.out}: {self.feed} {self.records} records from {self.rows_read} rows in "
            f"{self.elapsed_s:.2f} s, skipped {self.skipped_rows}"
        )
        lines = [head + (f" ({reasons})" if reasons else "")]
        lines += [f"  e.g. {e}" for e in self.examples]
        return "\n".join(lines)


def sorted_records(
    records: Iterable[Record],
    chunk_rows: int,
    tmp_dir: str | Path | None = None,
    max_runs: int = 256,
) -> Iterator[Record]:
    """Sort records by (event time, sequence) holding at most ``chunk_rows`` of them in memory.

    The sequence number makes the sort stable and every tuple comparison end before the key.
    At most ``max_runs`` spilled runs are open at once; more are first merged into one.

    Example
    -------
    >>> recs = [(3, 0, "a", "x"), (1, 1, "b", "y"), (3, 2, "c", "z"), (2, 3, "d", "w")]
    >>> [r[:2] for r in sorted_records(recs, chunk_rows=2)]
    [(1, 1), (2, 3), (3, 0), (3, 2)]
    >>> list(sorted_records(recs, chunk_rows=1, max_runs=2)) == sorted(recs)
    True
    """
    if chunk_rows < 1 or max_runs < 2:
        raise ValueError(f"need chunk_rows >= 1 and max_runs >= 2, got {chunk_rows}, {max_runs}")
    chunk: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="citystream-sort-", dir=tmp_dir) as tmp:
        runs: list[Path] = []
        names = count()
        for rec in records:
            chunk.append(rec)
            if len(chunk) >= chunk_rows:
                runs.append(_spill(sorted(chunk), Path(tmp) / f"run{next(names)}"))
                chunk = []
            if len(runs) >= max_runs:  # keep open files bounded: fold the runs into one
                folded = Path(tmp) / f"run{next(names)}"
                _spill(heapq.merge(*(_read_run(p) for p in runs)), folded)
                for p in runs:
                    p.unlink()
                runs = [folded]
        if not runs:
            yield from sorted(chunk)
            return
        if chunk:
            runs.append(_spill(sorted(chunk), Path(tmp) / f"run{next(names)}"))
        yield from heapq.merge(*(_read_run(p) for p in runs))


def _spill(chunk: Iterable[Record], path: Path) -> Path:
    with open(path, "wb") as fh:
        fh.writelines(orjson.dumps(rec) + b"\n" for rec in chunk)
    return path


def _read_run(path: Path) -> Iterator[Record]:
    with open(path, "rb") as fh:
        for line in fh:
            t, s, k, v = orjson.loads(line)
            yield t, s, k, v


def write_sorted(
    records: Iterable[Record], writer: RecordingWriter, feed: str, *, chunk_rows: int
) -> tuple[int, int | None, int | None]:
    """Sort ``records`` into ``feed`` of an open writer; return (count, first ts, last ts)."""
    n, first, last = 0, None, None
    for t, _, key, value in sorted_records(records, chunk_rows):
        writer.add(feed, key, t, value)
        first = t if first is None else first
        last, n = t, n + 1
    return n, first, last
