"""Bike supervision, stage 1: per-bike rules over ``bike.fixes`` (one :class:`BikeSupervisor` per partition).

Per batch, in this order: apply the partition's fixes (held back until event time passes them, see
``models/bikes/supervisor.py``; a partition's event time is the minimum over the ``bike.gps`` partitions that
feed it, from the marks the ingest sends along: ``models/source_clock.py``, minus the allowed lateness); send violations and GPS faults, decided parkings, and to *every*
partition of ``bike.occupancy`` and ``bike.fleet`` the items keyed there with this partition's watermark;
wait for delivery; persist the changed bikes (state row and held fixes, key ``<partition>|<bike>`` of the
``bike_state`` table); ack. A crash before the persist re-applies the batch to the older state, which
yields the same events again (deterministic per bike): the sinks and the keyed stages de-duplicate them.
A crash after it re-delivers fixes the state already holds: they are duplicates and change nothing.
"""

from __future__ import annotations

__all__ = ["register_supervise"]

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from faust.types import EventT

from models.bikes import BikeSupervisor, FirstActive, GpsFault, OccupancyDelta, Violation
from models.bikes.events import Event
from models.bikes.state import UNSEEN
from models.bikes.supervisor import STAT_NAMES
from models.bikes.whatif import supervisor_factory
from models.fix_messages import decode_fixes
from models.gps import FixBatch
from models.source_clock import Mark, SourceClock
from streams.agents.bikes_geo import BikeSetup
from streams.agents.bikes_rows import delta_item, mark_item, output_rows
from streams.app import Pipeline
from streams.chunks import json_chunks, marked_chunks
from streams.clock import YIELD_EVERY_FIXES
from streams.flow import fix_flow
from streams.partitioned import keep_models_of_assigned, register_batch_agent
from streams.state import END_MARKER, persist, raw_table
from streams.topics import partition_for

#: The supervisor's counters exported as ``citystream_bike_supervisor_fixes_total{outcome}`` (not ``fixes``,
#: their sum, nor the ``held`` gauge).
COUNTERS = tuple(k for k in STAT_NAMES if k not in ("fixes", "held"))


def register_supervise(pipe: Pipeline, setup: BikeSetup) -> None:
    """Add the ``supervise_bikes`` agent (stream role)."""
    s, n = pipe.settings, pipe.settings.partitions
    source = pipe.topic("bike.fixes")
    violations, parkings = pipe.topic("bike.violations"), pipe.topic("bike.parkings")
    occupancy, fleet = pipe.topic("bike.occupancy"), pipe.topic("bike.fleet")
    table = raw_table(pipe, "bike_state")
    sups: dict[int, BikeSupervisor] = {}
    make_supervisor = supervisor_factory(s.bench_supervisor, setup.config, setup.index)  # "": the real one
    if s.bench_supervisor:
        logging.getLogger(__name__).warning("bike supervision by a benchmark stand-in (CITYSTREAM_BENCH_SUPERVISOR=%s): "
                                            "its violations are not the city's", s.bench_supervisor)
    clocks: dict[int, SourceClock] = {}  # partition -> its sources' marks (entry ``~src|<partition>``)
    sent_wm: dict[int, int] = {}
    counted: dict[int, dict[str, int]] = {}  # partition -> the supervisor's counters last reported
    pipe.state["bike_supervisors"] = sups
    events_metric = pipe.metrics.bike_events
    q_zone: dict[str, int] = {}
    q_op: dict[str, int] = {}
    flow = fix_flow(pipe)  # tells the ingest how far this stage got (backpressure)
    outcomes, gauge = pipe.metrics.bike_supervisor_fixes, pipe.metrics.bike_supervision
    for k in COUNTERS:
        outcomes.labels(outcome=k)  # at 0 from the start: the first fix behind the watermark is an increase (alerts)

    def sup_for(p: int) -> BikeSupervisor:
        """The supervisor of partition ``p``, rebuilt from the recovered table on first use."""
        if p not in sups:
            sup = sups[p] = make_supervisor(p)
            prefix = f"{p}|".encode()
            sup.import_bikes({k[len(prefix):].decode(): v for k, v in table.data.items()
                              if v and k != END_MARKER and k.startswith(prefix)})
        return sups[p]

    def clock_key(p: int) -> bytes:
        return f"~src|{p}".encode()

    def clock_for(p: int) -> SourceClock:
        """The source clock of partition ``p``, restored from the table on first use."""
        if p not in clocks:
            raw, now = table.data.get(clock_key(p)), time.monotonic()
            clocks[p] = (SourceClock.from_bytes(raw, n, s.bike_idle_source_s, born=now) if raw
                         else SourceClock(n, s.bike_idle_source_s, born=now))
        return clocks[p]

    def event_time(clock: SourceClock) -> int:
        """The watermark a partition's supervisor may advance to by its ``clock`` (UNSEEN: hold everything)."""
        t = clock.time(time.monotonic())
        return UNSEEN if t is None else t - setup.config.allowed_lateness_ms

    # A supervisor rebuilt on reassignment counts from 0 (``counted``); the flow's counts start afresh at every
    # rebalance (as when each one revoked everything).
    keep_models_of_assigned(pipe, source.get_topic_name(), sups, clocks, counted, sent_wm,
                            then=lambda: flow.forget(range(n)))

    def zone_q(zone: str) -> int:
        q = q_zone.get(zone)
        if q is None:
            q = q_zone[zone] = partition_for(zone.encode(), n)
        return q

    def op_q(op: str) -> int:
        q = q_op.get(op)
        if q is None:
            q = q_op[op] = partition_for(op.encode(), n)
        return q

    async def _process(events: list[EventT]) -> None:
        batches: dict[int, list[tuple[FixBatch, list[Mark]]]] = defaultdict(list)
        for ev in events:
            fixes, extra = decode_fixes(ev.value)
            batches[ev.message.partition].append((fixes, extra.get("src") or []))
        futures = []
        for p, parts in batches.items():
            sup, clock = sup_for(p), clock_for(p)
            for run in _runs(parts):  # a partition's batch in runs of whole messages (one run: one call)
                now = time.monotonic()
                for _, marks in run:  # a message's marks cover its fixes and those before it
                    clock.update(marks, now)
                out = sup.process(FixBatch.concat([fixes for fixes, _ in run]), watermark=event_time(clock))
                futures += await _send(p, sup, out)
                await asyncio.sleep(0)  # let the loop breathe between runs (heartbeats, the ingest, metrics)
        await asyncio.gather(*futures)  # delivered before the state that produced them is persisted
        entries: list[tuple[int, bytes, bytes | None]] = [
            (p, f"{p}|{b}".encode(), v) for p in batches for b, v in sups[p].drain_changes().items()]
        entries += [(p, clock_key(p), clocks[p].to_bytes()) for p in batches]  # after the bikes: a prefix is safe
        await persist(table, entries, s.changelog_end_markers)
        for p, parts in batches.items():
            flow.done(p, sum(len(fixes) for fixes, _ in parts))
            _report(p, sups[p], clocks[p])

    def _report(p: int, sup: BikeSupervisor, clock: SourceClock) -> None:
        last = counted.setdefault(p, dict.fromkeys(COUNTERS, 0))
        for k in COUNTERS:
            if sup.stats[k] > last[k]:
                outcomes.labels(outcome=k).inc(sup.stats[k] - last[k])
                last[k] = sup.stats[k]
        part = str(p)
        if sup.watermark != UNSEEN:
            gauge.labels(partition=part, measure="event_time_seconds").set(sup.watermark / 1000)
        gauge.labels(partition=part, measure="held_fixes").set(sup.stats["held"])
        gauge.labels(partition=part, measure="sources_waiting").set(len(clock.waiting(time.monotonic())))

    def _runs(parts: list[tuple[FixBatch, list[Mark]]]) -> list[list[tuple[FixBatch, list[Mark]]]]:
        """Consecutive messages in runs of about ``YIELD_EVERY_FIXES`` fixes."""
        runs: list[list[tuple[FixBatch, list[Mark]]]] = [[]]
        size = 0
        for part in parts:
            if size >= YIELD_EVERY_FIXES:
                runs.append([])
                size = 0
            runs[-1].append(part)
            size += len(part[0])
        return runs

    async def _send(p: int, sup: BikeSupervisor, out: list[Event]) -> list[Any]:
        futures = []
        key = str(p).encode()
        rows = output_rows(out)
        if rows:
            ts = max(e.ts for e in out) / 1000  # the newest event time of the batch's outputs
            for topic, kinds in ((violations, ("violation", "fault")), (parkings, ("parking",))):
                mine = [r for r in rows if r["t"] in kinds]
                if mine:
                    for value in json_chunks(mine):  # as few messages as fit under the request size
                        futures.append(await topic.send(key=key, value=value, partition=p, timestamp=ts, force=True))
        deltas: dict[int, list[Any]] = defaultdict(list)
        marks: dict[int, list[Any]] = defaultdict(list)
        for e in out:
            if isinstance(e, OccupancyDelta):
                deltas[zone_q(e.zone_id)].append(delta_item(e))
            elif isinstance(e, FirstActive):
                marks[op_q(e.operator)].append(mark_item(e))
            elif isinstance(e, Violation):
                events_metric.labels(kind=e.kind, action=e.action).inc()
            elif isinstance(e, GpsFault):
                events_metric.labels(kind=e.kind, action="fault").inc()
        before = sent_wm.get(p)
        advanced = sup.watermark != before
        sent_wm[p] = sup.watermark
        wm_ts = sup.watermark / 1000 if sup.watermark > 0 else None
        for topic, items in ((occupancy, deltas), (fleet, marks)):
            for q in range(n):  # every partition: the watermark lets keyed stages order all sources
                if advanced or items.get(q):
                    earlier = before if before is not None else -(2**63)
                    for value in marked_chunks(p, sup.watermark, earlier, items.get(q, [])):
                        futures.append(await topic.send(key=key, value=value, partition=q, timestamp=wm_ts,
                                                        force=True))
        return futures

    register_batch_agent(pipe, source, "supervise_bikes", _process, counts_in=False)  # bike.fixes: its sink counts
