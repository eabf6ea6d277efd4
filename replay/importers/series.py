"""Import a CSV time series (NAB ``timestamp,value``, SKAB ``datetime;...``) as one sensor's telemetry.

Every row becomes a ``sensor_telemetry`` message keyed by ``sensor_id`` whose ``ts`` is ISO-8601 UTC
(``"2014-04-01T00:00:00Z"``); naive source times are read in ``tz``. Label columns (``anomaly``,
``changepoint``) are ground truth, not telemetry: they are left out of ``metrics`` and the
timestamps (epoch ms) of rows labelled non-zero go to the manifest's ``extra.ground_truth``, as do
the external ``labels`` (NAB keeps its labels in ``combined_labels.json``, not in the CSV).
An empty or NaN metric cell is left out of that message; a row with a non-numeric one is skipped.
"""

from __future__ import annotations

__all__ = ["LABEL_COLUMNS", "TIME_COLUMNS", "import_series", "metric_name"]

import csv
import gzip
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain, count
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson

from replay.importers.common import ImportSummary, Record, SkipLog, write_sorted
from replay.recording import RecordingWriter

TIME_COLUMNS = ("timestamp", "datetime", "time", "date", "ts")
LABEL_COLUMNS = ("anomaly", "changepoint")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_PROGRESS_EVERY = 10_000


def metric_name(column: str) -> str:
    """Default metric name for a column: lower snake case.

    Example
    -------
    >>> metric_name("Volume Flow RateRMS"), metric_name("value")
    ('volume_flow_raterms', 'value')
    """
    return re.sub(r"[^0-9a-z]+", "_", column.strip().lower()).strip("_")


def _parse_ms(text: str, zone: tzinfo) -> int:
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return (dt - _EPOCH) // _MS


def _iso_utc(ms: int) -> str:
    dt = _EPOCH + ms * _MS
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}" if ms % 1000 else "") + "Z"


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _pick_metrics(header: list[str], row: list[str], skip: set[int]) -> dict[int, str]:
    picked = {}
    for i, col in enumerate(header):
        if i in skip or i >= len(row):
            continue
        try:
            float(row[i])
        except ValueError:
            continue
        picked[i] = metric_name(col)
    if len(set(picked.values())) != len(picked):
        raise ValueError(f"metric names collide: {sorted(picked.values())}")
    return picked


@dataclass
class _SeriesRows:
    """Turns CSV rows into sorted-able records, counting skips and collecting labelled times."""

    path: Path
    reader: Any  # csv reader (its type is private to the csv module)
    header: list[str]
    time_idx: int
    label_idx: dict[int, str]
    metrics: dict[int, str] | None
    zone: tzinfo
    base: dict[str, Any]  # sensor_id, kind and maybe lat/lon: the fields every message repeats
    progress: Callable[[int], None] | None
    skips: SkipLog = field(default_factory=SkipLog)
    ground_truth: dict[str, list[int]] = field(default_factory=dict)
    rows: int = 0

    def __iter__(self) -> Iterator[Record]:
        seq, pending, name, sep = count(), 0, self.path.name, self.reader.dialect.delimiter
        key = str(self.base["sensor_id"])
        for row in self.reader:
            self.rows += 1
            pending += 1
            if pending == _PROGRESS_EVERY and self.progress is not None:
                self.progress(pending)
                pending = 0
            reason, ts, vals = self._parse(row)
            if reason:
                self.skips.skip(reason, f"{name}:{self.reader.line_num}", sep.join(row))
                continue
            value = orjson.dumps({**self.base, "ts": _iso_utc(ts), "metrics": vals}).decode()
            yield ts, next(seq), key, value
        if pending and self.progress is not None:
            self.progress(pending)

    def _parse(self, row: list[str]) -> tuple[str, int, dict[str, float]]:
        if len(row) != len(self.header):
            return ("blank_row" if not any(row) else "wrong_field_count"), 0, {}
        try:
            ts = _parse_ms(row[self.time_idx], self.zone)
        except ValueError:
            return "bad_time", 0, {}
        if self.metrics is None:
            self.metrics = _pick_metrics(self.header, row, {self.time_idx, *self.label_idx})
        try:
            vals = {m: float(row[i]) for i, m in self.metrics.items() if row[i].strip()}
            flags = [col for i, col in self.label_idx.items() if row[i].strip() and float(row[i])]
        except ValueError:
            return "bad_number", ts, {}
        vals = {m: v for m, v in vals.items() if math.isfinite(v)}
        if not vals:
            return "no_metrics", ts, {}
        for col in flags:
            self.ground_truth.setdefault(metric_name(col), []).append(ts)
        return "", ts, vals


def _time_index(header: list[str], time_column: str | None) -> int:
    lower = [c.lower() for c in header]
    if time_column is not None:
        if time_column.lower() not in lower:
            raise ValueError(f"no time column {time_column!r} in {header}")
        return lower.index(time_column.lower())
    return next((lower.index(c) for c in TIME_COLUMNS if c in lower), 0)


def import_series(
    path: Path,
    out: Path,
    *,
    sensor_id: str,
    kind: str,
    metrics: Mapping[str, str] | None = None,
    tz: str = "UTC",
    sep: str | None = None,
    time_column: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    label_columns: Iterable[str] = LABEL_COLUMNS,
    labels: Iterable[str] | None = None,
    chunk_rows: int = 200_000,
    progress: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> ImportSummary:
    """Import one CSV time series into the ``sensor_telemetry`` feed of a new recording at ``out``.

    Parameters
    ----------
    metrics
        Column → metric name (e.g. ``{"value": "level_m"}``); default: every column numeric in the
        first data row except the time and label columns, named by :func:`metric_name`.
    tz
        Zone of naive timestamps (IANA name); aware ones keep their own offset.
    sep
        Field separator; default: whichever of ``,`` ``;`` tab is most frequent in the header.
    time_column
        Default: the first of :data:`TIME_COLUMNS` present (any case), else the first column.
    lat, lon
        Sensor position, put in every message when both are given.
    labels
        Extra anomaly timestamps (read like the CSV's) to store as ground truth.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "s.csv").write_text("timestamp,value\\n2014-04-01 00:00:00,1.5\\n")
    >>> print(import_series(d / "s.csv", d / "rec", sensor_id="DR-1", kind="drainage_level",
    ...                     metrics={"value": "level_m"}))  # doctest: +ELLIPSIS
    /.../rec: sensor_telemetry 1 records from 1 rows in ... s, skipped 0
    """
    if not sensor_id or not kind:
        raise ValueError("sensor_id and kind must be non-empty")
    started = time.perf_counter()
    path = Path(path)
    zone: tzinfo = UTC if tz.upper() == "UTC" else ZoneInfo(tz)
    base: dict[str, Any] = {"sensor_id": sensor_id, "kind": kind}
    if lat is not None and lon is not None:
        base.update(lat=lat, lon=lon)
    with _open_text(path) as fh:
        first = fh.readline()
        reader = csv.reader(
            chain([first], fh), delimiter=sep or max((",", ";", "\t"), key=first.count)
        )
        header = [c.strip() for c in next(reader, [])]
        if header in ([], [""]):
            raise ValueError(f"{path}: empty file (no header)")
        wanted_labels = {c.lower() for c in label_columns}
        mcols = None
        if metrics is not None:
            missing = set(metrics) - set(header)
            if missing:
                raise ValueError(f"{path}: no column(s) {sorted(missing)} in {header}")
            mcols = {header.index(c): name for c, name in metrics.items()}
        src = _SeriesRows(
            path,
            reader,
            header,
            _time_index(header, time_column),
            {i: c for i, c in enumerate(header) if c.lower() in wanted_labels},
            mcols,
            zone,
            base,
            progress,
        )
        with RecordingWriter(out, f"import series {path.name}", overwrite=overwrite) as w:
            n, first_ts, last_ts = write_sorted(src, w, "sensor_telemetry", chunk_rows=chunk_rows)
            gt = src.ground_truth
            for text in labels or ():
                gt.setdefault("anomaly", []).append(_parse_ms(text, zone))
            w.meta.update(
                importer="series",
                file=path.name,
                sensor_id=sensor_id,
                kind=kind,
                metrics={header[i]: m for i, m in (src.metrics or {}).items()},
                tz=tz,
                rows_read=src.rows,
                records=n,
                skipped_rows=dict(sorted(src.skips.counts.items())),
            )
            if gt:
                w.meta["ground_truth"] = {k: sorted(v) for k, v in sorted(gt.items())}
    return ImportSummary(
        out,
        "sensor_telemetry",
        src.rows,
        n,
        dict(src.skips.counts),
        first_ts,
        last_ts,
        time.perf_counter() - started,
        src.skips.examples,
    )
