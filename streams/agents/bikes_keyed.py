"""Bike supervision, stage 2: the keyed-by-zone and keyed-by-operator stages, in event-time order.

Their input comes from every supervisor partition (sources), each message holding the items keyed to this
partition and the source's watermark. Items wait in an event-time buffer until the *minimum* watermark of
all sources passes them, then apply in a total order, so the result does not depend on how partitions
interleaved (replay speed, worker restarts). A source silent for ``CITYSTREAM_BIKE_IDLE_SOURCE_S`` of wall
time is left out of the minimum, so one idle partition cannot stall the others forever (its later items
are *late*: applied at once, out of order, and counted).

Events are acked after each batch, so the consumer lag drains; the waiting items and the source
watermarks are therefore state, persisted with the stage's own state in one changelog partition, in the
order stage state, released queue entries (deleted), new queue entries, watermarks. A crash leaves a prefix:
state newer than its queue re-applies released items, which the stages ignore (sets of bikes, not counts).
The queue holds one entry per input message (:class:`models.bikes.waiting.WaitingMessages`).
"""

from __future__ import annotations

__all__ = ["KeyedStage", "register_keyed"]

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import EventT

from models.bikes import Violation
from models.bikes.waiting import WaitingMessages
from streams.agents.bikes_rows import violation_row
from streams.app import Pipeline
from streams.chunks import json_chunks
from streams.partitioned import keep_models_of_assigned, register_batch_agent
from streams.state import END_MARKER, persist, raw_table

_UNSEEN = -(2**63)


@dataclass
class KeyedStage:
    """How one keyed stage plugs into the runner (see ``streams/agents/bikes.py``)."""

    name: str  # agent name; its table is ``<name>_state``
    topic: str  # input topic (short name)
    rows_topic: str  # output topic of the stage's rows (short name)
    make: Callable[[], Any]  # a fresh model (FenceOccupancy / FleetCounter) driven by advance_to alone
    item: Callable[[list[Any]], Any]  # message item -> model item (its ``ts`` is the event time)
    changes: Callable[[Any], list[tuple[bytes, bytes | None]]]  # drain the model's changed state entries
    restore: Callable[[Any, dict[bytes, bytes]], None]  # load state entries into a fresh model
    rows: Callable[[Any], list[dict[str, Any]]]  # drain the model's output rows


@dataclass
class _Partition:
    model: Any
    waiting: WaitingMessages[Any]  # input messages with items not applied yet, and their changelog entries
    wms: dict[int, int] = field(default_factory=dict)  # source partition -> watermark
    advanced_at: dict[int, float] = field(default_factory=dict)  # source -> wall clock of its last advance
    born: float = field(default_factory=time.monotonic)


def register_keyed(pipe: Pipeline, stage: KeyedStage) -> None:
    """Add the agent of one keyed stage (stream role)."""
    s, n = pipe.settings, pipe.settings.partitions
    source, violations, rows_out = pipe.topic(stage.topic), pipe.topic("bike.violations"), pipe.topic(stage.rows_topic)
    table = raw_table(pipe, f"{stage.name}_state")
    parts: dict[int, _Partition] = {}
    events_metric = pipe.metrics.bike_events

    def part_for(q: int) -> _Partition:
        """Partition ``q``'s stage, rebuilt from the recovered table on first use."""
        if q not in parts:
            part = parts[q] = _Partition(stage.make(), WaitingMessages(q, stage.item))
            sp, wk = f"s|{q}|".encode(), f"~wm|{q}".encode()
            live = [(k, v) for k, v in table.data.items() if v and k != END_MARKER]
            stage.restore(part.model, {k[len(sp):]: v for k, v in live if k.startswith(sp)})
            part.wms = {int(src): wm for k, v in live if k == wk for src, wm in orjson.loads(v).items()}
            part.model.process(part.waiting.restore(live))  # held: the stage's watermark starts unset
        return parts[q]

    keep_models_of_assigned(pipe, source.get_topic_name(), parts)


    def watermark(part: _Partition, now: float) -> int | None:
        """The minimum watermark of the sources that are not idle (None: nothing to go by)."""
        live = [part.wms.get(src, _UNSEEN) for src in range(n)
                if now - part.advanced_at.get(src, part.born) <= s.bike_idle_source_s]
        return min(live) if live else None

    async def _process(events: list[EventT]) -> None:
        now = time.monotonic()
        pushed: dict[int, list[Any]] = {}
        late = 0
        for ev in events:
            q = ev.message.partition
            part = part_for(q)
            doc = orjson.loads(ev.value)
            src, wm = int(doc["src"]), int(doc["wm"])
            if wm > part.wms.get(src, _UNSEEN):
                part.wms[src] = wm
                part.advanced_at[src] = now
            # Items behind the stage are applied at once (and counted); a message already waiting adds nothing.
            items, behind = part.waiting.add(ev.message.offset, ev.value, doc["items"], part.model.watermark)
            pushed.setdefault(q, []).extend(items)
            late += behind
        if late:
            events_metric.labels(kind=stage.name, action="late").inc(late)
        futures, entries = [], []
        for q, items in pushed.items():
            part = parts[q]
            out: list[Violation] = part.model.process(items)
            upto = watermark(part, now)
            if upto is not None:
                out += part.model.advance_to(upto)
            futures += await _deliver(q, part, out)
            sp = f"s|{q}|".encode()
            entries += [(q, sp + k, v) for k, v in stage.changes(part.model)]
            entries += [(q, k, v) for k, v in part.waiting.entries(part.model.watermark)]  # deletes, then new
            entries.append((q, f"~wm|{q}".encode(), orjson.dumps({str(k): v for k, v in sorted(part.wms.items())})))
        await asyncio.gather(*futures)  # outputs before the state that produced them
        await persist(table, entries, s.changelog_end_markers)

    async def _deliver(q: int, part: _Partition, out: list[Violation]) -> list[Any]:
        futures = []
        key = str(q).encode()
        if out:
            for v in out:
                events_metric.labels(kind=v.kind, action=v.action).inc()
            for value in json_chunks([violation_row(v) for v in out]):  # as few messages as fit
                futures.append(await violations.send(key=key, value=value, partition=q, force=True))
        rows = stage.rows(part.model)
        if rows:
            for value in json_chunks(rows):
                futures.append(await rows_out.send(key=key, value=value, partition=q, force=True))
        return futures

    register_batch_agent(pipe, source, stage.name, _process, counts_in=False)  # bike.* items: uncounted as before
