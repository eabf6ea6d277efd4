"""Ground truth of a simulation: what was injected, and when. Written as ``ground_truth.jsonl.gz``.

Gzip (mtime 0, no file name) of JSON lines, deterministic for the same seed and parameters. All
times are epoch milliseconds UTC; positions are WGS84 degrees. The first line is the header::

    {"truth": "meta", "format": "citystream-truth/1", "start_ts": .., "end_ts": .., "seed": .., ..., "counts": {..}}

Then one line per entry, grouped by ``truth`` in this order and sorted by time within a group:

``bike_violation``
    ``kind`` ∈ ``no_parking`` | ``outside_fence`` | ``zombie`` | ``black_bike``; ``bike_id``,
    ``operator``, ``zone_id`` (no_parking: the 禁停区; outside_fence: the fence-required area;
    zombie: the fence it sits in; black_bike: null), ``grid_id``, ``lat``/``lon`` (the true parking
    position; the first fix for black bikes), ``opened_ts`` (the lock time: equal to the ``ts`` of the
    bike's lock fix; before the recording for bikes already zombies at its start; the first fix for
    black bikes), ``closed_ts`` (the unlock that ended it, or null) and ``closed_by`` (``operator``:
    cleared into a fence; ``user``: ridden away; null).
``gps_fault``
    ``fault`` ∈ ``jump`` (kilometres off, a few seconds before a good fix) | ``outside_area`` (tens of
    km off) | ``null_island`` (0, 0); ``bike_id``, ``operator``, ``ts``, and ``lat``/``lon`` exactly
    as sent. A fault fix is an extra message: the bike's real track is unaffected.
``sensor_anomaly``
    ``type`` ∈ ``spike`` | ``level_shift`` | ``drift`` | ``stuck`` | ``dropout``; ``sensor_id``,
    ``kind``, ``metric`` (null for dropout), ``start_ts``/``end_ts`` (readings with
    ``start_ts <= ts <= end_ts`` are affected; a dropout window holds no reading), ``magnitude`` (in
    the metric's unit: the spike/shift size, the drift reached at ``end_ts``; null otherwise).
``threshold_breach``
    Hard-threshold breaches as they appear in the readings sent: ``sensor_id``, ``kind``, ``metric``,
    ``threshold`` (the limit at ``start_ts``), ``start_ts``/``end_ts`` (first and last breaching
    reading; consecutive breaching readings form one episode), ``peak``.
``deadline_breach``
    ``case_id``, ``step`` (as in :mod:`models.incidents.deadlines`), ``clock_start_ts``,
    ``deadline_ts`` (< the recording's end) and ``done_ts`` (the completing transition, later than
    the deadline, or null when it is not in the recording).
``duplicate_group``
    ``case_ids`` (the original first), ``category``, ``subcategory``, ``first_ts``.
"""

from __future__ import annotations

__all__ = ["TruthLog", "TRUTH_TYPES", "read_truth"]

import gzip
import io
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

TRUTH_TYPES = ("bike_violation", "gps_fault", "sensor_anomaly", "threshold_breach", "deadline_breach",
               "duplicate_group")
_TIME_FIELD = {"bike_violation": "opened_ts", "gps_fault": "ts", "sensor_anomaly": "start_ts",
               "threshold_breach": "start_ts", "deadline_breach": "deadline_ts",
               "duplicate_group": "first_ts"}
_SUBKIND = {"bike_violation": "kind", "gps_fault": "fault", "sensor_anomaly": "type",
            "deadline_breach": "step"}


class TruthLog:
    """Collects truth entries (plain dicts) during a run; :meth:`write` sorts and writes them.

    Example
    -------
    >>> log = TruthLog()
    >>> i = log.add("bike_violation", kind="no_parking", bike_id="MT-000001", opened_ts=5, closed_ts=None)
    >>> log.entries[i]["closed_ts"] = 9
    >>> log.counts()
    {'bike_violation': 1, 'bike_violation.no_parking': 1}
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, truth: str, **fields: Any) -> int:
        """Append an entry; return its index (to update it later, e.g. ``closed_ts``)."""
        if truth not in _TIME_FIELD:
            raise ValueError(f"unknown truth type {truth!r}")
        self.entries.append({"truth": truth, **fields})
        return len(self.entries) - 1

    def counts(self) -> dict[str, int]:
        """Entries per type, and per type.subkind (e.g. ``sensor_anomaly.spike``)."""
        c: Counter[str] = Counter()
        for e in self.entries:
            c[e["truth"]] += 1
            sub = _SUBKIND.get(e["truth"])
            if sub is not None:
                c[f"{e['truth']}.{e[sub]}"] += 1
        return dict(sorted(c.items()))

    def write(self, path: Path, meta: dict[str, Any]) -> None:
        """Write the header and the sorted entries as deterministic gzip JSON lines."""
        order = {t: n for n, t in enumerate(TRUTH_TYPES)}
        lines = [orjson.dumps(e) for e in self.entries]
        keys = [(order[e["truth"]], e[_TIME_FIELD[e["truth"]]], line)
                for e, line in zip(self.entries, lines, strict=True)]
        head = orjson.dumps({"truth": "meta", "format": "citystream-truth/1", **meta,
                             "counts": self.counts()})
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(head + b"\n")
            gz.write(b"".join(k[2] + b"\n" for k in sorted(keys)))
        path.write_bytes(buf.getvalue())


def read_truth(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a truth file back: ``(header, entries)``."""
    with gzip.open(path, "rb") as fh:
        rows = [orjson.loads(line) for line in fh]
    return rows[0], rows[1:]
