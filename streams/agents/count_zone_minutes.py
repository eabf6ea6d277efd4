"""Stage 2 of the bike flow: per-minute, per-zone counts of distinct fixes (see :mod:`models.zone_counts`).

State is durable in two Faust tables (changelog topics), co-partitioned with ``bike.fixes``:
``zone_windows`` (key ``partition|minute|zone``) and ``bike_seen`` (key bike id). Per batch, in this order:
send the window upserts, persist the windows, persist the bikes, then ack. A crash anywhere in between
replays the batch from the last commit and yields the same rows (see docs/architecture.md).
"""

from __future__ import annotations

__all__ = ["register"]

import asyncio
from collections import defaultdict
from typing import Any

import orjson
from faust.types import EventT, StreamT

from models.gps import FixBatch
from models.grid import GridZones
from models.zone_counts import BikeSeen, Window, ZoneMinuteCounter
from streams.app import Pipeline


def _window_key(p: int, key: tuple[int, str]) -> bytes:
    return f"{p}|{key[0]}|{key[1]}".encode()


def _raw_table(pipe: Pipeline, name: str) -> Any:
    """A table of bytes keys and values: our models serialize their own compact state."""
    table = pipe.app.Table(name, key_type=bytes, value_type=bytes, partitions=pipe.settings.partitions)
    table.key_serializer = table.value_serializer = "raw"  # before the changelog topic is first built
    return table


#: Key of the end-marker records (see ``Settings.changelog_end_markers``); never a real state key.
END_MARKER = b"~end"


async def _persist(table: Any, entries: list[tuple[int, bytes, bytes | None]], end_markers: bool) -> None:
    """Write state entries to the table's changelog (None deletes) and wait until the broker has them.

    Straight to the changelog topic rather than ``send_changelog``: that goes through Faust's 100-message
    producer buffer, far too small for a batch of state, and the table's in-memory copy is not used
    while running (each counter holds the live state; the table is read back only on recovery).

    Tansu quirk: ListOffsets(latest) returns the start offset of the last record batch, and Faust's
    recovery reads a changelog only up to that offset. A one-record marker batch, sent after the entries
    were acknowledged (so it cannot share their batch), makes the last batch the marker alone.
    """
    topic = table.changelog_topic
    futures = [await topic.send(key=k, value=v, partition=p, force=True) for p, k, v in entries]
    await asyncio.gather(*futures)
    if end_markers and entries:
        await asyncio.gather(*[
            await topic.send(key=END_MARKER, value=b"", partition=p, force=True) for p in sorted({e[0] for e in entries})
        ])


def register(pipe: Pipeline) -> None:
    if not pipe.runs_streams:
        return
    s = pipe.settings
    source, out = pipe.topic("bike.fixes"), pipe.topic("bike.zone-minute")
    app = pipe.app
    windows_table = _raw_table(pipe, "zone_windows")
    bikes_table = _raw_table(pipe, "bike_seen")
    grid = GridZones(s.zone_cell_m)
    lateness_ms = s.allowed_lateness_s * 1000
    counters: dict[int, ZoneMinuteCounter] = {}
    pipe.state["zone_counters"] = counters
    fixes_metric = pipe.metrics.fixes

    def counter_for(p: int) -> ZoneMinuteCounter:
        """The counter of partition ``p``, rebuilt from the recovered tables on first use."""
        if p not in counters:
            c = counters[p] = ZoneMinuteCounter(lateness_ms, max(3_600_000, 2 * lateness_ms + 60_000))
            prefix = f"{p}|".encode()
            for k, v in windows_table.data.items():
                if k.startswith(prefix) and v:
                    _, minute, zone = k.decode().split("|", 2)
                    c.restore_window((int(minute), zone), Window.from_bytes(v))
            for k, v in bikes_table.data.items():
                if v and k != END_MARKER:
                    bp, seen = BikeSeen.from_bytes(v)
                    if bp == p:
                        c.restore_bike(k.decode(), seen)
        return counters[p]

    @app.on_partitions_revoked.connect
    async def forget(app_: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == source.get_topic_name():
                counters.pop(tp.partition, None)

    @app.agent(source, name="count_zone_minutes")
    async def count_zone_minutes(stream: StreamT) -> None:
        async for events in stream.noack_take(s.batch_size, within=s.batch_within_s):
            await _process(events)
            for ev in events:
                await stream.ack(ev)

    async def _process(events: list[EventT]) -> None:
        changed_windows: dict[int, set[tuple[int, str]]] = defaultdict(set)
        changed_bikes: dict[int, set[str]] = defaultdict(set)
        tallies = {"accepted": 0, "duplicate": 0, "late": 0}
        for ev in events:
            p = ev.message.partition
            batch = FixBatch.from_json(ev.value)
            result = counter_for(p).process(ev.message.offset, batch, grid.cells(batch.lon, batch.lat))
            changed_windows[p] |= result.windows
            changed_bikes[p] |= result.bikes
            tallies["accepted"] += result.accepted
            tallies["duplicate"] += result.duplicate
            tallies["late"] += result.late
        futures = []
        for p, keys in changed_windows.items():
            c = counters[p]
            for key in sorted(keys):
                w = c.windows[key]
                row = {"minute_ms": key[0], "zone": key[1], "partition": p, "fixes": w.fixes, "bikes": w.bikes,
                       "locked": w.locked, "version": w.last_offset}
                futures.append(await out.send(
                    key=_window_key(p, key), value=orjson.dumps(row), timestamp=key[0] / 1000, force=True,
                ))
        await asyncio.gather(*futures)
        # Windows before bikes: a crash between the two re-applies the batch to windows guarded by offset.
        markers = s.changelog_end_markers
        await _persist(windows_table, [
            (p, _window_key(p, k), counters[p].windows[k].to_bytes()) for p, keys in changed_windows.items() for k in keys
        ], markers)
        await _persist(bikes_table, [
            (p, b.encode(), counters[p].bikes[b].to_bytes(p)) for p, bikes in changed_bikes.items() for b in bikes
        ], markers)
        await _persist(windows_table, [
            (p, _window_key(p, k), None) for p in changed_windows for k in counters[p].evict()
        ], markers)
        for outcome, n in tallies.items():
            if n:
                fixes_metric.labels(outcome=outcome).inc(n)
        pipe.metrics.records_out.labels(topic=out.get_topic_name()).inc(len(futures))
