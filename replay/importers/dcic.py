"""Import Xiamen DCIC 2021 shared-bike files (共享单车潮汐点) into a recording's ``bike_gps`` feed.

Two row kinds, told apart by the header (a UTF-8 BOM, CRLF and ``.csv.gz`` are fine):

- order/lock rows ``BICYCLE_ID, LATITUDE, LONGITUDE, LOCK_STATUS, UPDATE_TIME`` (1 = locked);
- track rows ``BICYCLE_ID, LOCATING_TIME, LATITUDE, LONGITUDE`` (a moving bike: ``locked`` false).

Times are Asia/Shanghai local (``2020-12-21 07:00:00`` or ``2020/12/21 7:00``). Each value is a
one-fix message keyed by bike id whose ``ts`` keeps the local wall time with its offset
(``"2020-12-21T07:00:00+08:00"``); the line's ``t`` is the same instant in epoch ms UTC. DCIC does
not say which operator a bike belongs to, so ``operator`` is a parameter. Rows are written in
event-time order (stable; external merge sort above ``chunk_rows``). Unusable rows are counted by
reason in the manifest (``extra.skipped_rows``) and the returned :class:`ImportSummary`.
"""

from __future__ import annotations

__all__ = ["LOCK_COLUMNS", "TRACK_COLUMNS", "import_dcic", "parse_local_time"]

import csv
import gzip
import math
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import IO, Any

import orjson

from replay.importers.common import ImportSummary, Record, SkipLog, write_sorted
from replay.recording import RecordingWriter

LOCK_COLUMNS = ("BICYCLE_ID", "LATITUDE", "LONGITUDE", "LOCK_STATUS", "UPDATE_TIME")
TRACK_COLUMNS = ("BICYCLE_ID", "LOCATING_TIME", "LATITUDE", "LONGITUDE")
SHANGHAI = timezone(timedelta(hours=8))  # China has had no daylight saving time since 1991
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TIME = re.compile(
    r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*"
)
_PROGRESS_EVERY = 10_000


@lru_cache(maxsize=1 << 16)  # DCIC times are per minute or second: a few thousand distinct strings
def parse_local_time(text: str) -> tuple[int, str]:
    """Parse a DCIC local time; return (epoch ms UTC, ISO-8601 string with ``+08:00``).

    Example
    -------
    >>> parse_local_time("2020/12/21 7:05")
    (1608505500000, '2020-12-21T07:05:00+08:00')
    >>> parse_local_time("2020-12-21 07:05:00")[0] == parse_local_time("2020/12/21 07:05")[0]
    True
    """
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"unrecognised time {text!r}")
    y, mo, d, h, mi, s = (int(g or 0) for g in m.groups()[:6])
    us = int((m.group(7) or "0").ljust(6, "0")) // 1000 * 1000
    dt = datetime(y, mo, d, h, mi, s, us, tzinfo=SHANGHAI)
    return (dt - _EPOCH) // _MS, dt.isoformat(timespec="milliseconds" if us else "seconds")


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _kind(path: Path, header: list[str]) -> tuple[str, dict[str, int]]:
    cols = {c.strip().upper(): i for i, c in enumerate(header)}
    for kind, need in (("lock", LOCK_COLUMNS), ("track", TRACK_COLUMNS)):
        if set(need) <= set(cols):
            return kind, cols
    raise ValueError(
        f"{path}: header {header} is neither DCIC lock rows {list(LOCK_COLUMNS)} "
        f"nor track rows {list(TRACK_COLUMNS)}"
    )


def _fix(
    row: list[str], ib: int, ilat: int, ilon: int, it: int, il: int | None, operator: str
) -> tuple[str, int, str, str]:
    """Return (skip reason or "", ts ms, bike id, value) for one data row."""
    bike = row[ib].strip()
    if not 1 <= len(bike) <= 64:
        return "bad_bike_id", 0, "", ""
    try:
        lat, lon = float(row[ilat]), float(row[ilon])
    except ValueError:
        return "bad_lat_lon", 0, "", ""
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        return "lat_lon_out_of_range", 0, "", ""
    try:
        ts, iso = parse_local_time(row[it])
    except ValueError:
        return "bad_time", 0, "", ""
    status = "0" if il is None else row[il].strip()  # track rows are fixes of a moving bike
    if status not in ("0", "1"):
        return "bad_lock_status", 0, "", ""
    value = orjson.dumps(
        {
            "bike_id": bike,
            "operator": operator,
            "ts": iso,
            "lat": lat,
            "lon": lon,
            "locked": status == "1",
        }
    ).decode()  # str, not orjson's over-allocated bytes: see common.Record
    return "", ts, bike, value


def _records(
    path: Path,
    operator: str,
    seq: Iterator[int],
    skips: SkipLog,
    stats: dict[str, Any],
    progress: Callable[[int], None] | None,
) -> Iterator[Record]:
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file (no header)")
        kind, cols = _kind(path, header)
        stats.update(name=path.name, kind=kind, rows=0)
        idx = (
            cols["BICYCLE_ID"],
            cols["LATITUDE"],
            cols["LONGITUDE"],
            cols["UPDATE_TIME" if kind == "lock" else "LOCATING_TIME"],
            cols["LOCK_STATUS"] if kind == "lock" else None,
        )
        ncols, pending = len(header), 0
        for row in reader:
            stats["rows"] += 1
            pending += 1
            if pending == _PROGRESS_EVERY and progress is not None:
                progress(pending)
                pending = 0
            if len(row) == ncols:
                reason, ts, bike, value = _fix(row, *idx, operator)
            else:
                reason = "blank_row" if not any(row) else "wrong_field_count"
            if reason:
                skips.skip(reason, f"{path.name}:{reader.line_num}", ",".join(row))
            else:
                yield ts, next(seq), bike, value
        if pending and progress is not None:
            progress(pending)


def import_dcic(
    paths: list[Path],
    out: Path,
    *,
    operator: str = "unknown",
    chunk_rows: int = 200_000,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> ImportSummary:
    """Import DCIC lock and/or track files into a new recording at ``out``.

    Parameters
    ----------
    paths
        CSV files (``.csv`` or ``.csv.gz``), lock or track rows; merged into one feed.
    out
        Recording directory to create.
    operator
        Operator name put in every fix (1–32 chars). The default, ``unknown``, is the pipeline's unattributed
        operator (``CITYSTREAM_BIKE_UNATTRIBUTED_OPERATOR``): counted, never taken for a black bike.
    chunk_rows
        Rows sorted in memory at once; more are spilled to sorted temp files and merged.
    progress
        Called with the number of rows read since its previous call (e.g. ``bar.advance``).
    overwrite
        Replace an existing recording at ``out``.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("BICYCLE_ID,LOCATING_TIME,LATITUDE,LONGITUDE\\n"
    ...                              "b1,2020-12-21 07:00:05,24.48,118.09\\n")
    >>> print(import_dcic([d / "t.csv"], d / "rec"))  # doctest: +ELLIPSIS
    /.../rec: bike_gps 1 records from 1 rows in ... s, skipped 0
    """
    if not 1 <= len(operator) <= 32:
        raise ValueError(f"operator must be 1-32 characters, got {operator!r}")
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    skips, seq = SkipLog(), count()
    files: list[dict[str, Any]] = [{} for _ in paths]

    def every_row() -> Iterator[Record]:
        for path, stats in zip(paths, files, strict=True):
            yield from _records(path, operator, seq, skips, stats, progress)

    source = "import dcic " + " ".join(p.name for p in paths)
    with RecordingWriter(out, source, overwrite=overwrite) as w:
        n, first, last = write_sorted(every_row(), w, "bike_gps", chunk_rows=chunk_rows)
        rows = sum(f["rows"] for f in files)
        w.meta.update(
            importer="dcic",
            files=files,
            operator=operator,
            rows_read=rows,
            records=n,
            skipped_rows=dict(sorted(skips.counts.items())),
            ts_format="ISO-8601 Asia/Shanghai local time with +08:00 offset",
        )
    return ImportSummary(
        out,
        "bike_gps",
        rows,
        n,
        dict(skips.counts),
        first,
        last,
        time.perf_counter() - started,
        skips.examples,
    )
