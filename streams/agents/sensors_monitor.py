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
from faust.types import EventT

from models.dead_letter import DeadLetter
from models.sensors import Invalid, MonitorConfig, decode_reading
from models.sensors.partition import PartitionMonitors
from streams.app import Pipeline
from streams.deadletters import send_dead_letters
from streams.partitioned import PartitionModels, message_limit_of, register_batch_agent
from streams.state import Entry, persist, raw_table


def register(pipe: Pipeline) -> None:
    s = pipe.settings
    source = pipe.topic("sensor.telemetry")
    readings_t, alerts_t, incidents_t = pipe.topic("sensor.readings"), pipe.topic("sensor.alerts"), pipe.topic(
        "incident.events")
    cfg = MonitorConfig()
    outcome = pipe.metrics.sensor_readings

    def build(p: int, entries: list[tuple[bytes, bytes]]) -> PartitionMonitors:
        """The monitors of partition ``p`` from the recovered state (keys ``<partition>|<sensor>``)."""
        prefix = f"{p}|".encode()
        return PartitionMonitors(cfg, (pickle.loads(v) for k, v in entries if k.startswith(prefix)))

    table = raw_table(pipe, "sensor_monitors")
    parts = PartitionModels(pipe, source, table, build)
    pipe.state["sensor_partitions"] = parts.models

    async def _process(events: list[EventT]) -> None:
        dead: list[tuple[EventT, DeadLetter]] = []
        rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
        futures: list[Any] = []
        for ev in events:
            p, key = ev.message.partition, ev.message.key
            r = decode_reading(ev.value, key.decode("utf-8", "replace") if key else None,
                               message_limit_of(ev, s.max_clock_skew_s))
            if isinstance(r, Invalid):
                dead.append((ev, DeadLetter(r.reason, r.detail, -1, ev.value or b"")))
                continue
            up = parts[p].process(r)
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
                                for p, pm in parts.models.items() for m in pm.take_changed()]
        await persist(table, entries, s.changelog_end_markers, also=futures)

    register_batch_agent(pipe, source, "monitor_sensors", _process)
