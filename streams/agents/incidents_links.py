"""``link_duplicates``: duplicate linking on ``incident.reports`` (key = subcategory or category), one
:class:`~models.incidents.linking.ReportLinker` per partition; links go to ``incident.updates``.

Messages are either a report or ``{"frontier": ts, "from": p}`` from partition ``p`` of the case stream.
State: table ``incident_links``, key = match key (partition-local), plus ``~fr|<partition>`` holding the
upstream frontiers. Per batch: send the links and wait; persist the keys, then the frontiers; ack.
"""

from __future__ import annotations

__all__ = ["register"]

import asyncio

import orjson
from faust.types import EventT

from models.dead_letter import DeadLetter
from models.incidents.linking import ReportLinker
from streams.agents.incidents_setup import incident_setup
from streams.app import Pipeline
from streams.batches import Record, send_records
from streams.deadletters import send_dead_letters
from streams.partitioned import PartitionModels, by_partition, register_batch_agent
from streams.state import Entry, persist, raw_table

_REPORT = ("case_id", "ts", "category", "subcategory", "lat", "lon")


def _fr_key(p: int) -> bytes:
    return f"~fr|{p}".encode()


def register(pipe: Pipeline) -> None:
    """Add ``link_duplicates`` (stream roles only)."""
    if not pipe.runs_streams:
        return
    s = pipe.settings
    setup = incident_setup(s)
    source = pipe.topic("incident.reports")
    outcomes = pipe.metrics.incident_events

    def build(p: int, entries: list[tuple[bytes, bytes]]) -> ReportLinker:
        """The linker of partition ``p`` from the recovered state (its keys and upstream frontiers)."""
        lk = setup.report_linker(p)
        for k, v in entries:
            if k == _fr_key(p) or not k.startswith(b"~"):
                lk.restore(v)
        return lk

    linkers = PartitionModels(pipe, source, raw_table(pipe, "incident_links"), build)

    async def _process(events: list[EventT]) -> None:
        rows: list[Record] = []
        entries: list[Entry] = []
        marks: list[Entry] = []
        bad: list[tuple[EventT, DeadLetter]] = []
        for p, evs in by_partition(events):
            lk = linkers[p]
            for ev in evs:
                try:  # written by track_incidents, but a stray producer must not crash the agent
                    msg = orjson.loads(ev.value)
                    if "frontier" in msg:
                        lk.advance(int(msg["from"]), int(msg["frontier"]))
                    else:
                        if not ev.message.key:
                            raise KeyError("a report needs its match key as the message key")
                        lk.push(ev.message.key.decode(), {k: msg[k] for k in _REPORT})
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    bad.append((ev, DeadLetter("bad_report", f"not a report or frontier: {exc!r}"[:300], -1,
                                               ev.value or b"")))  # fmt: skip
            out = lk.drain()
            rows += [(None, cid.encode(), orjson.dumps(row), ts) for cid, ts, row in out.updates]
            entries += [(p, k.encode(), lk.snapshot(k)) for k in sorted(out.dirty)]
            if out.frontiers_moved:
                marks.append((p, _fr_key(p), lk.snapshot_frontiers()))
            for outcome, n in out.counts.items():
                outcomes.labels(outcome=outcome).inc(n)
        futures = await send_records(pipe, "incident.updates", rows)
        futures += await send_dead_letters(pipe, bad)
        await asyncio.gather(*futures)
        # One write: within a changelog partition Kafka keeps the order, so the marks land after the entries.
        await persist(linkers.table, entries + marks, s.changelog_end_markers)

    register_batch_agent(pipe, source, "link_duplicates", _process)
