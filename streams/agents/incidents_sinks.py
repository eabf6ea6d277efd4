"""``store_incident_updates``: ``incident.updates`` into ClickHouse, one table per row kind.

Rows are routed by their ``kind`` (see :mod:`models.incidents.rows`) to one batching sink per table;
every table is flushed before the batch is acked. A message that is not a known row goes to the
dead-letter topic (``bad_update``), as do rows ClickHouse refuses for good (``sink_rejected``).
"""

from __future__ import annotations

__all__ = ["register", "ROUTES"]

import asyncio

import orjson
from faust.types import EventT, StreamT

from models.dead_letter import DeadLetter
from models.incidents.rows import DIMENSIONS
from sinks.batching import BatchingSink, Rejected
from streams.app import Pipeline
from streams.deadletters import send_dead_letters

#: Row kind → (table, columns); ``*_ms`` columns are the tables' EPHEMERAL epoch-ms inputs.
ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "case": ("incident_cases", (
        "case_id", "status", *DIMENSIONS, "cur_category", "cur_subcategory", "lat", "lon", "reporter", "text",
        "reported_ms", "status_ms", "registered_ms", "closed_ms", "reopens", "step", "deadline_ms", "breaches",
        "version",
    )),
    "transition": ("incident_transitions", (
        "case_id", "seq", "ts_ms", "transition", "from_status", "to_status", "step", "step_start_ms",
        "deadline_ms", "on_time", "reopens", *DIMENSIONS,
    )),
    "breach": ("incident_breaches", (
        "case_id", "step", "status", "since_ms", "deadline_ms", "breach_ms", *DIMENSIONS,
    )),
    "duplicate": ("incident_duplicates", ("case_id", "parent_case_id", "ts_ms", "match_key")),
}


def register(pipe: Pipeline) -> None:
    """Add ``store_incident_updates`` (sink roles only)."""
    if not pipe.runs_sinks:
        return
    assert pipe.clickhouse is not None
    s = pipe.settings
    source = pipe.topic("incident.updates")
    current: dict[tuple[str, int, int], EventT] = {}

    async def on_reject(rejected: Rejected) -> None:
        items = [(current[src], DeadLetter("sink_rejected", rejected.reason[:500], -1, current[src].value or b""))
                 for src in rejected.sources if src in current]  # fmt: skip
        await asyncio.gather(*await send_dead_letters(pipe, items))

    sinks = {kind: BatchingSink(pipe.clickhouse, table, columns, pipe.metrics, on_reject=on_reject)
             for kind, (table, columns) in ROUTES.items()}  # fmt: skip
    m_in = pipe.metrics.records_in.labels(topic=source.get_topic_name())

    @pipe.app.agent(source, name="store_incident_updates")
    async def store_incident_updates(stream: StreamT) -> None:
        nonlocal current
        async for events in stream.noack_take(  # type: ignore[attr-defined]  # in Faust, not in its stub
                s.sink_batch_size, within=s.sink_within_s):
            current = {(e.message.topic, e.message.partition, e.message.offset): e for e in events}
            bad = []
            for ev in events:
                m = ev.message
                try:
                    row = orjson.loads(ev.value)
                    _, columns = ROUTES[row["kind"]]
                    values = tuple(row[c] for c in columns)
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    bad.append((ev, DeadLetter("bad_update", f"not an incident row: {exc!r}"[:300], -1, ev.value or b"")))
                    continue
                sinks[row["kind"]].add([values], m.topic, m.partition, m.offset)
            for sink in sinks.values():
                await sink.flush()
            await asyncio.gather(*await send_dead_letters(pipe, bad))
            for ev in events:
                await stream.ack(ev)
            m_in.inc(len(events))
