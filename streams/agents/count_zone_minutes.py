"""Stage 2 of the bike flow: per-minute, per-zone counts of distinct fixes (see :mod:`models.zone_counts`).

State is durable in one Faust table, ``zone_counts``, co-partitioned with ``bike.fixes``: windows under
``w|partition|minute|zone`` and bikes under ``b|bike``. Per batch, the window upserts and the state (windows
first, then bikes, in one changelog partition, whose order Kafka keeps) are sent together and awaited, then
the events are acked. After a crash the state is a prefix of what was sent, so a window can be newer than its
bikes but never older, and the window's offset guard stops a double count. Windows restored after a
restart are emitted again (same version), so a lost upsert is always repaired (docs/architecture.md).
"""

from __future__ import annotations

__all__ = ["register"]

import asyncio
from collections import defaultdict
from typing import Any

from faust.types import EventT

from models.gps import FixBatch
from models.grid import GridZones
from models.zone_counts import BikeSeen, Window, ZoneMinuteCounter
from streams.app import Pipeline
from streams.chunks import json_chunks
from streams.clock import YIELD_EVERY_FIXES
from streams.partitioned import register_batch_agent
from streams.state import END_MARKER, Entry, persist, raw_table


def _window_key(p: int, key: tuple[int, str]) -> bytes:
    return f"w|{p}|{key[0]}|{key[1]}".encode()


def _row(p: int, key: tuple[int, str], w: Window) -> dict[str, Any]:
    return {"minute_ms": key[0], "zone": key[1], "partition": p, "fixes": w.fixes, "bikes": w.bikes,
            "locked": w.locked, "version": w.last_offset}


def register(pipe: Pipeline) -> None:
    if not pipe.runs_streams:
        return
    s = pipe.settings
    source, out = pipe.topic("bike.fixes"), pipe.topic("bike.zone-minute")
    app = pipe.app
    table = raw_table(pipe, "zone_counts")
    grid = GridZones(s.zone_cell_m)
    lateness_ms = s.allowed_lateness_s * 1000
    counters: dict[int, ZoneMinuteCounter] = {}
    reemit: dict[int, set[tuple[int, str]]] = {}
    pipe.state["zone_counters"] = counters
    fixes_metric = pipe.metrics.fixes

    def counter_for(p: int) -> ZoneMinuteCounter:
        """The counter of partition ``p``, rebuilt from the recovered table on first use."""
        if p not in counters:
            c = counters[p] = ZoneMinuteCounter(lateness_ms, max(3_600_000, 2 * lateness_ms + 60_000))
            wprefix = f"w|{p}|".encode()
            for k, v in table.data.items():
                if not v or k == END_MARKER:
                    continue
                if k.startswith(wprefix):
                    _, _, minute, zone = k.decode().split("|", 3)
                    c.restore_window((int(minute), zone), Window.from_bytes(v))
                elif k.startswith(b"b|"):
                    bp, seen = BikeSeen.from_bytes(v)
                    if bp == p:
                        c.restore_bike(k[2:].decode(), seen)
            reemit[p] = set(c.windows)
        return counters[p]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust stub: async receivers work
    async def forget(app_: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == source.get_topic_name():
                counters.pop(tp.partition, None)
                reemit.pop(tp.partition, None)

    async def _process(events: list[EventT]) -> None:
        changed_windows: dict[int, set[tuple[int, str]]] = defaultdict(set)
        changed_bikes: dict[int, set[str]] = defaultdict(set)
        tallies = {"accepted": 0, "duplicate": 0, "late": 0}
        since_yield = 0
        for ev in events:
            p = ev.message.partition
            batch = FixBatch.from_json(ev.value)
            result = counter_for(p).process(ev.message.offset, batch, grid.cells(batch.lon, batch.lat))
            since_yield += len(batch)
            if since_yield >= YIELD_EVERY_FIXES:  # let the loop breathe (heartbeats, the ingest, metrics)
                since_yield = 0
                await asyncio.sleep(0)
            changed_windows[p] |= result.windows
            changed_bikes[p] |= result.bikes
            tallies["accepted"] += result.accepted
            tallies["duplicate"] += result.duplicate
            tallies["late"] += result.late
        for p in list(changed_windows):
            changed_windows[p] |= reemit.pop(p, set())
        outputs = []
        entries: list[Entry] = []
        for p, keys in changed_windows.items():
            c = counters[p]
            rows = []
            for key in sorted(k for k in keys if k in c.windows):
                w = c.windows[key]
                rows.append(_row(p, key, w))
                entries.append((p, _window_key(p, key), w.to_bytes()))
            if rows:  # messages of upserts per partition and batch (as few as fit): the sink stores arrays as rows
                ts = max(r["minute_ms"] for r in rows) / 1000
                for value in json_chunks(rows):
                    outputs.append(await out.send(key=str(p).encode(), value=value, partition=p, timestamp=ts,
                                                  force=True))
        # Windows before bikes (same partition: Kafka keeps the order), evictions last.
        for p, bikes in changed_bikes.items():
            bike_bytes = counters[p].bike_bytes
            entries += [(p, b"b|" + b.encode(), bike_bytes(b, p)) for b in bikes]
        entries += [(p, _window_key(p, k), None) for p in changed_windows for k in counters[p].evict()]
        await persist(table, entries, s.changelog_end_markers, also=outputs)
        for outcome, n in tallies.items():
            if n:
                fixes_metric.labels(outcome=outcome).inc(n)
        pipe.metrics.records_out.labels(topic=out.get_topic_name()).inc(len(outputs))

    register_batch_agent(pipe, source, "count_zone_minutes", _process, counts_in=False)  # bike.fixes: its sink counts
