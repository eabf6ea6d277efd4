"""Duplicate linking as a stage of its own, keyed by what duplicates share.

Two reports of one problem are two cases with different ids, so they usually sit on different
partitions of ``incident.events``. The case stream therefore hands every applied report on, keyed
by its match key (subcategory, or category; see :func:`~models.incidents.rows.match_key`), and
:class:`ReportLinker` links them per partition of that stream: all reports two duplicates could
share meet in one place.

Order: each partition of the case stream sends its reports in event-time order and, after them, its
release *frontier* (every report with an earlier ts has been sent). The linker holds reports until
the lowest frontier of all ``upstream`` partitions has passed them and links them in ``(ts, case_id)``
order. A report is therefore linked against exactly the reports before it, whatever the arrival
interleaving of the partitions: the links are deterministic. The price is that linking waits for
the slowest partition; quiet partitions move on with heartbeats (see ``docs/schemas.md``).
"""

from __future__ import annotations

__all__ = ["ReportLinker", "LinkOutbox"]

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from models.incidents.duplicates import DuplicateLinker
from models.incidents.reorder import CaseBuffer
from models.incidents.rows import duplicate_row

_KEY = "_k"  # match key carried by a held report


@dataclass(slots=True)
class LinkOutbox:
    """What a :class:`ReportLinker` produced since the last drain: ``duplicate`` rows as
    ``(case_id, ts, row)``, match keys whose saved state changed, whether the frontiers moved, counts."""

    updates: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    frontiers_moved: bool = False
    counts: Counter[str] = field(default_factory=Counter)


class ReportLinker:
    """Link the reports of one partition of the match-keyed report stream.

    Parameters
    ----------
    partition
        The partition served (saved with every snapshot).
    upstream
        Number of partitions of the case stream; linking waits for a frontier from each.
    distance_m, window_ms, match_on
        As :class:`~models.incidents.duplicates.DuplicateLinker`.

    Example
    -------
    >>> lk = ReportLinker(0, upstream=2)
    >>> t0 = 1795244400000
    >>> r = {"category": "E01", "subcategory": "E0102", "lat": 24.48, "lon": 118.09}
    >>> lk.push("E0102", {**r, "case_id": "B", "ts": t0 + 600_000, "lat": 24.4802})
    >>> lk.advance(1, t0 + 3_600_000)    # partition 1 is done up to t0 + 1 h; partition 0 not yet
    >>> lk.push("E0102", {**r, "case_id": "A", "ts": t0})
    >>> lk.advance(0, t0 + 3_600_000)
    >>> [(c, row["parent_case_id"]) for c, _, row in lk.drain().updates]
    [('B', 'A')]
    """

    def __init__(self, partition: int, upstream: int, distance_m: float = 50.0,
                 window_ms: int = 30 * 60_000, match_on: str = "subcategory") -> None:  # fmt: skip
        if upstream < 1:
            raise ValueError("upstream must be >= 1")
        self.partition = partition
        self.upstream = upstream
        self.buffer = CaseBuffer(0)
        self.linker = DuplicateLinker(distance_m, window_ms, match_on)  # type: ignore[arg-type]
        self.frontiers: dict[int, int] = {}
        self.held: dict[str, list[dict[str, Any]]] = {}
        self.out = LinkOutbox()

    @property
    def frontier(self) -> int | None:
        """Reports before this have been linked (``None`` until every upstream partition reported)."""
        if len(self.frontiers) < self.upstream:
            return None
        return min(self.frontiers.values())

    def push(self, key: str, report: dict[str, Any]) -> None:
        """Take one report (``case_id, ts, category, subcategory, lat, lon``) sent under ``key``."""
        cid = report["case_id"]
        if cid in self.linker or any(h["case_id"] == cid for h in self.held.get(key, ())):
            self.out.counts["link_duplicate"] += 1  # re-sent after an upstream restart
            return
        e = {**report, _KEY: key}
        self.buffer.hold(e)
        self.held.setdefault(key, []).append(e)
        self.out.dirty.add(key)

    def advance(self, upstream_partition: int, frontier: int) -> None:
        """Upstream partition ``upstream_partition`` has sent every report with ``ts < frontier``."""
        if frontier <= self.frontiers.get(upstream_partition, frontier - 1):
            return
        self.frontiers[upstream_partition] = frontier
        self.out.frontiers_moved = True
        low = self.frontier
        if low is not None:
            self._release(self.buffer.advance_to(low))

    def drain(self) -> LinkOutbox:
        """Everything produced since the last call."""
        out, self.out = self.out, LinkOutbox()
        out.dirty |= self.linker.touched
        self.linker.touched.clear()
        return out

    def _release(self, reports: list[dict[str, Any]]) -> None:
        for e in reports:
            key = e[_KEY]
            held = [h for h in self.held.get(key, ()) if h is not e]
            if held:
                self.held[key] = held
            else:
                self.held.pop(key, None)
            self.out.dirty.add(key)
            parent = self.linker.link(e)
            self.out.counts["linked" if parent else "unique"] += 1
            if parent is not None:
                self.out.updates.append((e["case_id"], e["ts"], duplicate_row(e["case_id"], parent, e["ts"], key)))

    # -- state ---------------------------------------------------------------------------------
    def snapshot(self, key: str) -> bytes | None:
        """Saved form of one match key's reports (recent ones and those waiting), or None if none."""
        recent, held = self.linker.reports(key), self.held.get(key, [])
        if not recent and not held:
            return None
        return orjson.dumps({"p": self.partition, "k": key, "r": recent, "h": held})

    def snapshot_frontiers(self) -> bytes:
        """Saved form of the upstream frontiers."""
        return orjson.dumps({"p": self.partition, "f": {str(q): f for q, f in sorted(self.frontiers.items())}})

    def restore(self, data: bytes) -> bool:
        """Put back what :meth:`snapshot` or :meth:`snapshot_frontiers` saved; False if it belongs
        to another partition."""
        d = orjson.loads(data)
        if d["p"] != self.partition:
            return False
        if "f" in d:
            # Held reports behind these frontiers go out with the next advance, not now.
            self.frontiers.update({int(q): f for q, f in d["f"].items()})
            return True
        for case_id, ts, lat, lon, parent in d["r"]:
            self.linker.restore(case_id, d["k"], ts, lat, lon, parent)
        for e in d["h"]:
            self.held.setdefault(d["k"], []).append(e)
            self.buffer.hold(e)
        return True
