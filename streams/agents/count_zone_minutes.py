"""Stage 2 of the bike flow: per-minute, per-zone counts of distinct fixes (see :mod:`models.zone_counts`).

State is durable in one Faust table, ``zone_counts``, co-partitioned with ``bike.fixes``: windows under
``w|partition|minute|zone``, bikes under ``b|bike`` and the zone names that bike entries refer to by code under
``z|partition|code``. Per batch, the window upserts and the state (new zones first, then windows, then bikes,
in one changelog partition, whose order Kafka keeps) are sent together and awaited, then the events are acked.
After a crash the state is a prefix of what was sent, so a window can be newer than its bikes but never
older, and the window's offset guard stops a double count; a bike entry's zones are always there. Windows
restored after a restart are emitted again (same version), so a lost upsert is always repaired
(docs/architecture.md).
"""

from __future__ import annotations

__all__ = ["register"]

import asyncio
from collections import defaultdict
from typing import Any

import numpy as np
from faust.types import EventT
from numpy.typing import NDArray

from models.fix_messages import decode_fixes
from models.grid import GridZones
from models.zone_counts import ZoneMinuteCounter, pack_windows, union
from streams.app import Pipeline
from streams.chunks import json_chunks
from streams.clock import YIELD_EVERY_FIXES
from streams.partitioned import keep_models_of_assigned, register_batch_agent
from streams.state import END_MARKER, Entry, persist, raw_table

#: The outcomes of ``citystream_bike_fixes_total`` (a fix counted, the same fix again, older than the lateness).
_OUTCOMES = ("accepted", "duplicate", "late")


def _window_key(p: int, minute_ms: int, zone: str) -> bytes:
    return f"w|{p}|{minute_ms}|{zone}".encode()


def state_changes(p: int, c: ZoneMinuteCounter, windows: NDArray[np.int64],
                  bikes: NDArray[np.int64]) -> tuple[list[dict[str, Any]], list[Entry]]:
    """The upsert rows of the windows ``windows`` (codes) of partition ``p``'s counter and the state entries
    of a batch, in the order they must be written: new zones, windows, bikes, evicted windows."""
    entries: list[Entry] = [(p, k, v) for k, v in c.zone_entries(p)]  # bike entries refer to zones by code
    minutes, zones, counts = c.window_state(windows)
    fixes, nbikes, locked, version = counts.T.tolist() if len(minutes) else ([], [], [], [])
    rows = [{"minute_ms": m, "zone": z, "partition": p, "fixes": f, "bikes": b, "locked": lk, "version": v}
            for m, z, f, b, lk, v in zip(minutes, zones, fixes, nbikes, locked, version, strict=True)]
    entries += [(p, _window_key(p, m, z), v) for m, z, v in zip(minutes, zones, pack_windows(counts), strict=True)]
    entries += c.bike_entries(p, bikes)
    entries += [(p, _window_key(p, m, z), None) for m, z in c.window_keys(c.evict())]
    return rows, entries


def register(pipe: Pipeline) -> None:
    if not pipe.runs_streams:
        return
    s = pipe.settings
    source, out = pipe.topic("bike.fixes"), pipe.topic("bike.zone-minute")
    table = raw_table(pipe, "zone_counts")
    grid = GridZones(s.zone_cell_m)
    lateness_ms = s.allowed_lateness_s * 1000
    counters: dict[int, ZoneMinuteCounter] = {}
    reemit: dict[int, NDArray[np.int64]] = {}  # windows restored: emitted again with the next batch
    pipe.state["zone_counters"] = counters
    fixes_metric = pipe.metrics.fixes
    for outcome in _OUTCOMES:
        fixes_metric.labels(outcome=outcome)  # at 0 from the start (the late share is alerted on)

    def counter_for(p: int) -> ZoneMinuteCounter:
        """The counter of partition ``p``, rebuilt from the recovered table on first use."""
        if p not in counters:
            c = counters[p] = ZoneMinuteCounter(lateness_ms, max(3_600_000, 2 * lateness_ms + 60_000))
            c.load(p, ((k, v) for k, v in table.data.items() if v and k != END_MARKER))
            reemit[p] = c.window_codes()
        return counters[p]

    keep_models_of_assigned(pipe, source.get_topic_name(), counters, reemit)

    async def _process(events: list[EventT]) -> None:
        changed_windows: dict[int, list[NDArray[np.int64]]] = defaultdict(list)
        changed_bikes: dict[int, list[NDArray[np.int64]]] = defaultdict(list)
        tallies = dict.fromkeys(_OUTCOMES, 0)
        since_yield = 0
        for ev in events:
            p = ev.message.partition
            batch, _ = decode_fixes(ev.value)
            result = counter_for(p).process(ev.message.offset, batch, grid.keys(batch.lon, batch.lat), grid.name)
            since_yield += len(batch)
            if since_yield >= YIELD_EVERY_FIXES:  # let the loop breathe (heartbeats, the ingest, metrics)
                since_yield = 0
                await asyncio.sleep(0)
            changed_windows[p].append(result.windows)
            changed_bikes[p].append(result.bikes)
            tallies["accepted"] += result.accepted
            tallies["duplicate"] += result.duplicate
            tallies["late"] += result.late
        for p in list(changed_windows):
            if p in reemit:
                changed_windows[p].append(reemit.pop(p))
        outputs = []
        entries: list[Entry] = []
        zones_sent = []
        for p, parts in changed_windows.items():
            c = counters[p]
            zones_sent.append((c, len(c.zones)))
            rows, state = state_changes(p, c, union(parts), union(changed_bikes[p]))
            entries += state  # per changelog partition in this order (other partitions' entries don't matter)
            if rows:  # messages of upserts per partition and batch (as few as fit): the sink stores arrays as rows
                ts = max(r["minute_ms"] for r in rows) / 1000
                for value in json_chunks(rows):
                    outputs.append(await out.send(key=str(p).encode(), value=value, partition=p, timestamp=ts,
                                                  force=True))
        await persist(table, entries, s.changelog_end_markers, also=outputs)
        for c, n in zones_sent:
            c.zones_persisted = n
        for outcome, n in tallies.items():
            if n:
                fixes_metric.labels(outcome=outcome).inc(n)
        pipe.metrics.records_out.labels(topic=out.get_topic_name()).inc(len(outputs))

    register_batch_agent(pipe, source, "count_zone_minutes", _process, counts_in=False)  # bike.fixes: its sink counts
