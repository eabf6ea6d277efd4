"""``track_incidents``: the case stream on ``incident.events`` (key case_id), one
:class:`~models.incidents.flow.CaseFlow` per partition.

Outputs go to ``incident.updates`` (case upserts, transitions, breaches; key case id) and applied
reports to ``incident.reports`` (key = match key) for duplicate linking, each followed by the
partition's release frontier on every partition of that topic. Bad input, illegal transitions and
late events go to the dead-letter topic with their reason; payloads there carry the phone's hash,
never the number.

State: table ``incident_cases``, key case id (partition-local), plus ``~wm|<partition>`` holding the
partition's watermark. Per batch, in this order: send the outputs and wait; persist the changed cases, then
the watermark (one write; Kafka keeps the order within the changelog partition); ack. A crash before the state is written re-applies the batch and sends the same
rows again (idempotent sinks); a crash between the cases and the watermark leaves an older watermark,
which only delays outputs. Outputs never depend on batch boundaries.
"""

from __future__ import annotations

__all__ = ["register"]

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
from faust.types import EventT

from models.dead_letter import DeadLetter
from models.incidents.flow import CaseFlow, Message, Outbox
from streams.agents.incidents_setup import incident_setup
from streams.app import Pipeline
from streams.batches import Record, send_records
from streams.deadletters import send_dead_letters
from streams.partitioned import (
    PartitionModels,
    by_partition,
    message_limit_of,
    register_batch_agent,
)
from streams.state import Entry, persist, raw_table


def _wm_key(p: int) -> bytes:
    return f"~wm|{p}".encode()


def register(pipe: Pipeline) -> None:
    """Add ``track_incidents`` (stream roles only)."""
    if not pipe.runs_streams:
        return
    s = pipe.settings
    setup = incident_setup(s)
    source = pipe.topic("incident.events")
    outcomes = pipe.metrics.incident_events
    m_lag = pipe.metrics.event_time_lag.labels(topic=source.get_topic_name())

    def build(p: int, entries: list[tuple[bytes, bytes]]) -> CaseFlow:
        """The flow of partition ``p`` from the recovered state: its watermark first, then its cases."""
        f = setup.case_flow(p)
        wm = dict(entries).get(_wm_key(p))
        if wm:
            f.restore_watermark(int(wm))
        for k, v in entries:
            if not k.startswith(b"~"):
                f.restore(v)
        return f

    table = raw_table(pipe, "incident_cases")
    flows = PartitionModels(pipe, source, table, build)
    pipe.state["incident_flows"] = flows.models

    async def _process(events: list[EventT]) -> None:
        rows: list[Record] = []
        reports: list[Record] = []
        dead: list[tuple[Any, DeadLetter]] = []
        entries: list[Entry] = []
        marks: list[Entry] = []
        newest = 0
        for p, evs in by_partition(events):
            flow = flows[p]
            flow.push([Message(ev.value, ev.message.key.decode("utf-8", "replace") if ev.message.key else None,
                               ev.message.offset, message_limit_of(ev, s.max_clock_skew_s))
                       for ev in evs])  # fmt: skip
            out = flow.drain()
            rows += [(None, cid.encode(), orjson.dumps(row), ts) for cid, ts, row in out.updates]
            reports += [(None, key.encode(), orjson.dumps(report), ts) for key, ts, report in out.reports]
            if out.frontier is not None:  # after this partition's reports: every earlier report has been sent
                mark = orjson.dumps({"frontier": out.frontier, "from": p})
                reports += [(q, None, mark, out.frontier) for q in range(s.partitions)]
            dead += _dead_letters(p, out, {ev.message.offset: ev for ev in evs})
            entries += [(p, cid.encode(), flow.snapshot(cid)) for cid in sorted(out.dirty)]
            if out.watermark is not None:
                marks.append((p, _wm_key(p), str(out.watermark).encode()))
                newest = max(newest, out.watermark)
            for outcome, n in out.counts.items():
                outcomes.labels(outcome=outcome).inc(n)
        futures = await send_records(pipe, "incident.updates", rows)
        futures += await send_records(pipe, "incident.reports", reports)
        futures += await send_dead_letters(pipe, dead)
        await asyncio.gather(*futures)  # outputs delivered before the state that assumes them is saved
        # One write: within a changelog partition Kafka keeps the order, so the marks land after the entries.
        await persist(table, entries + marks, s.changelog_end_markers)
        if newest:
            m_lag.set(time.time() - newest / 1000)  # wall clock: a metric, not logic

    register_batch_agent(pipe, source, "track_incidents", _process)

    def _dead_letters(p: int, out: Outbox, batch: dict[int, EventT]) -> list[tuple[Any, DeadLetter]]:
        """Dead letters with a stand-in for the source event (a reject may come from an earlier batch)."""
        dead = []
        for r in out.rejects:
            ev = batch.get(r.offset)
            message = SimpleNamespace(
                topic=source.get_topic_name(), partition=p, offset=r.offset, key=(r.key or "").encode(),
                timestamp=r.ts_ms / 1000 if r.ts_ms is not None else (ev.message.timestamp if ev else 0.0),
            )
            dead.append((SimpleNamespace(message=message), DeadLetter(r.reason, r.detail, -1, r.payload)))
        return dead
