"""Score sensor telemetry, raise alerts and incident reports (logic in :mod:`models.sensors`).

Per batch: decode and validate (dead-letter bad readings), run each reading through its partition's
:class:`~models.sensors.partition.PartitionMonitors` (rules, anomaly model, offline deadlines on the event-time
watermark), send scored readings, alerts and incident reports and wait, persist every changed sensor's
monitor (pickled, ~2 KB) to the changelog, then ack. After a crash the re-delivered readings are not newer
than the restored state and are skipped, or replayed from older state to the same outputs (idempotent rows,
deterministic case ids), so scores after a restart equal scores without one.
"""

from __future__ import annotations

__all__ = ["register"]

import pickle
from collections import defaultdict
from typing import Any

import orjson
from faust.types import EventT, StreamT

from models.gps import DeadLetter
from models.sensors import Invalid, MonitorConfig, decode_reading
from models.sensors.partition import PartitionMonitors
from streams.app import Pipeline
from streams.deadletters import send_dead_letters
from streams.state import END_MARKER, Entry, persist, raw_table


def register(pipe: Pipeline) -> None:
    s = pipe.settings
    source = pipe.topic("sensor.telemetry")
    readings_t, alerts_t, incidents_t = pipe.topic("sensor.readings"), pipe.topic("sensor.alerts"), pipe.topic(
        "incident.events")
    table = raw_table(pipe, "sensor_monitors")
    cfg = MonitorConfig()
    parts: dict[int, PartitionMonitors] = {}
    pipe.state["sensor_partitions"] = parts
    outcome = pipe.metrics.sensor_readings

    def partition(p: int) -> PartitionMonitors:
        """The monitors of partition ``p``, rebuilt from the recovered table on first use."""
        if p not in parts:
            prefix = f"{p}|".encode()
            parts[p] = PartitionMonitors(cfg, (pickle.loads(v) for k, v in table.data.items()
                                               if v and k != END_MARKER and k.startswith(prefix)))
        return parts[p]

    @pipe.app.on_partitions_revoked.connect
    async def forget(app_: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == source.get_topic_name():
                parts.pop(tp.partition, None)

    @pipe.app.agent(source, name="monitor_sensors")
    async def monitor_sensors(stream: StreamT) -> None:
        async for events in stream.noack_take(s.batch_size, within=s.batch_within_s):
            await _process(events)
            for ev in events:
                await stream.ack(ev)
            pipe.metrics.records_in.labels(topic=source.get_topic_name()).inc(len(events))

    async def _process(events: list[EventT]) -> None:
        dead: list[tuple[EventT, DeadLetter]] = []
        rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
        futures: list[Any] = []
        for ev in events:
            p, key = ev.message.partition, ev.message.key
            r = decode_reading(ev.value, key.decode("utf-8", "replace") if key else None)
            if isinstance(r, Invalid):
                dead.append((ev, DeadLetter(r.reason, r.detail, -1, ev.value or b"")))
                continue
            up = partition(p).process(r)
            if up.score is None:
                outcome.labels(outcome="stale").inc()
            else:
                outcome.labels(outcome="scored").inc()
                rows[p] += [{"sensor_id": r.sensor_id, "kind": r.kind, "ts_ms": r.ts, "metric": m, "value": v,
                             "score": up.score, "lat": r.lat or 0.0, "lon": r.lon or 0.0}
                            for m, v in r.metrics.items()]
            for alert, case_id in up.alerts:
                futures.append(await alerts_t.send(key=alert.sensor_id.encode(), value=orjson.dumps(
                    alert.to_row(case_id)), timestamp=alert.ts_ms / 1000, force=True))
                outcome.labels(outcome=f"alert_{alert.status}").inc()
            for inc in up.incidents:
                futures.append(await incidents_t.send(key=inc["case_id"].encode(), value=orjson.dumps(inc),
                                                      timestamp=inc["ts"] / 1000, force=True))
                outcome.labels(outcome="incident").inc()
        futures += await send_dead_letters(pipe, dead)
        for p, rs in rows.items():
            futures.append(await readings_t.send(key=str(p).encode(), value=orjson.dumps(rs), partition=p,
                                                 timestamp=max(r["ts_ms"] for r in rs) / 1000, force=True))
        entries: list[Entry] = [(p, f"{p}|{m.sensor_id}".encode(), pickle.dumps(m, protocol=5))
                                for p, pm in parts.items() for m in pm.take_changed()]
        await persist(table, entries, s.changelog_end_markers, also=futures)
