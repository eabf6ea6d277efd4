"""Sensors end to end on the embedded stack: a tilt breach becomes an alert and an incident report within
1 s, and the model scores after a worker restart equal the scores of an uninterrupted run."""

from __future__ import annotations

import math
import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from models.sensors import MonitorConfig, Reading, SensorMonitor
from tests.integration.harness import Stack

pytestmark = pytest.mark.integration
T0 = 1_795_244_400_000  # 2026-11-21T07:00Z


def tilt(i: int, value: float, sensor: str = "TILT-0001") -> dict:
    return {"sensor_id": sensor, "kind": "billboard_tilt", "ts": T0 + 30_000 * i, "lat": 24.47, "lon": 118.11,
            "metrics": {"tilt_deg": value}}


def send(stack: Stack, readings: list[dict], ahead_ms: int = 0) -> None:
    """Each reading in a message stamped with its own time (``ahead_ms``: the reading's clock that far ahead)."""
    p = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=2)
    for r in readings:
        p.send(stack.topic("sensor.telemetry"), key=r["sensor_id"].encode(),
               value=orjson.dumps({**r, "ts": r["ts"] + ahead_ms}), timestamp_ms=r["ts"])
    p.flush()
    p.close()


@pytest.mark.serial  # a wall-clock bound: run alone, not beside another test
def test_tilt_breach_alert_and_incident_within_one_second(stack: Stack) -> None:
    worker = stack.start_worker()
    worker.wait_ready()
    warm = [tilt(i, 0.8 + 0.02 * math.sin(i)) for i in range(40)]
    send(stack, warm + [{**tilt(0, 1.0), "metrics": {"tilt_rad": 0.01}}])
    send(stack, [tilt(40, 0.8)], ahead_ms=86_400_000)  # a clock a day ahead: dead-lettered, not a reading
    worker.wait_drained({"sensor_readings": len(warm), "dead_letters": 2})
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(stack.topic(t), p) for t in ("sensor.alerts", "incident.events")
                     for p in range(stack.partitions)])  # no group: joining one takes seconds on Tansu
    while consumer.poll(timeout_ms=300):  # read what came before the breach (the warm-up raises nothing)
        pass
    t0 = time.monotonic()
    send(stack, [tilt(40, 6.3)])
    got: dict[str, dict] = {}
    while time.monotonic() - t0 < 5 and len(got) < 2:
        for tp, msgs in consumer.poll(timeout_ms=50).items():
            for m in msgs:
                doc = orjson.loads(m.value)
                name = "alert" if tp.topic.endswith("sensor.alerts") else "incident"
                got.setdefault(name, {**doc, "_t": time.monotonic() - t0})
    consumer.close()
    # back to normal: the rule's alert closes at once, the model's after 10 calm readings; then the case resolves
    send(stack, [tilt(41 + i, 0.8 + 0.02 * math.sin(i)) for i in range(15)])
    worker.wait_drained({"sensor_readings": len(warm) + 16, "sensor_alerts": 4})  # two alerts, opened and closed
    # the case stream applies events once its partition's event time is past them by the allowed lateness
    p = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    for part in range(stack.partitions):
        p.send(stack.topic("incident.events"), value=orjson.dumps({"heartbeat": True, "ts": T0 + 3_600_000}),
               partition=part)
    p.flush()
    p.close()
    worker.wait_drained({"incident_transitions": 2})  # report, resolve
    worker.stop()
    assert set(got) == {"alert", "incident"}, got
    assert got["alert"]["condition"] == "billboard_tilt" and got["alert"]["status"] == "open"
    assert got["incident"]["subcategory"] == "E2101" and got["incident"]["channel"] == "sensor"
    assert got["incident"]["case_id"] == got["alert"]["case_id"]
    assert max(got["alert"]["_t"], got["incident"]["_t"]) < 1.0, got  # produce → alert + incident, wall clock
    case = got["incident"]["case_id"]
    alerts, cases = stack.query(
        "SELECT condition, status, toUnixTimestamp64Milli(closed), case_id FROM sensor_alerts FINAL",
        f"SELECT status, toUnixTimestamp64Milli(closed_at) FROM incident_cases FINAL WHERE case_id = '{case}'")
    assert sorted(a[0] for a in alerts) == ["anomaly", "billboard_tilt"], alerts
    assert all(a[1] == "close" and a[3] == case for a in alerts), alerts
    assert cases == [["closed", max(a[2] for a in alerts)]], (alerts, cases)  # closed when the last alert did


def test_scores_after_restart_equal_scores_without_restart(stack: Stack) -> None:
    sensors = [f"GAS-{i:04d}" for i in range(6)]
    readings = [{"sensor_id": s, "kind": "gas", "ts": T0 + 30_000 * i + j, "lat": 24.4, "lon": 118.1,
                 "metrics": {"lel_pct": round(1.0 + j * 0.1 + 0.05 * math.sin(i * (j + 1)) + (4.0 if i == 150 else 0.0), 3)}}
                for i in range(200) for j, s in enumerate(sensors)]
    half = len(readings) // 2
    send(stack, readings[:half])
    w1 = stack.start_worker()
    w1.wait_drained({"sensor_readings": half})
    w1.stop()
    send(stack, readings[half:])
    w2 = stack.start_worker()
    w2.wait_drained({"sensor_readings": len(readings) - half})  # a new process counts from 0
    w2.stop()
    [rows] = stack.query("SELECT sensor_id, toUnixTimestamp64Milli(ts), score FROM sensor_readings FINAL")
    got = {(s, int(t)): float(v) for s, t, v in rows}
    cfg = MonitorConfig()
    monitors = {s: SensorMonitor(s, "gas") for s in sensors}
    expected = {}
    for r in readings:
        up = monitors[r["sensor_id"]].process(Reading(r["sensor_id"], "gas", r["ts"], 24.4, 118.1, r["metrics"]), cfg)
        expected[(r["sensor_id"], r["ts"])] = up.score
    assert set(got) == set(expected)
    assert all(abs(got[k] - expected[k]) < 1e-6 for k in expected), "scores differ after the restart"
    assert max(expected.values()) > 0.9  # the injected step at reading 150 is scored as anomalous
