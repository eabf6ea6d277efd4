"""The keyed bike stages (``count_parked``, ``count_fleet``) keep items that wait for other sources across a
kill -9: the items of a message whose offset was committed live only in the stage's changelog then.

The supervisors' messages are produced directly, so the items are sure to be waiting at the kill: source 0
sends them with its watermark past them, sources 1-3 have sent nothing, so the stage's watermark (the minimum
over its sources) holds them. After the restart, sources 1-3 catch up and the items must apply, exactly once,
giving the rows of the pure model fed the same items.
"""

from __future__ import annotations

import signal

import orjson
import pytest
from kafka import KafkaProducer

from citystream.config import Settings
from citystream.workers import WorkerProcess
from models.bikes import FenceOccupancy, FirstActive, FleetCounter, OccupancyDelta
from streams.agents.bikes_geo import load_bike_setup
from streams.agents.bikes_rows import delta_item, fleet_row, mark_item, occupancy_row, violation_row
from streams.topics import ensure_topics
from tests.integration.harness import Stack

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000  # event time of the test (ms)
QUOTA = 3  # meituan's quota here: the 4th active bike opens over_quota


def _send(stack: Stack, topic: str, docs: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap)
    try:
        for doc in docs:
            producer.send(stack.topic(topic), orjson.dumps(doc), key=str(doc["src"]).encode(), partition=0,
                          timestamp_ms=doc["wm"] // 1000 * 1000)
        producer.flush(30)
    finally:
        producer.close()


def _committed(w: WorkerProcess, topic: str) -> bool:
    """The worker read partition 0 of ``topic`` and committed past what it read (lag reported and 0)."""
    lags = [v for (name, labels), v in w.metrics().items()
            if name == "citystream_consumer_lag" and ("topic", topic) in labels and ("partition", "0") in labels]
    return bool(lags) and lags[0] == 0


def test_items_waiting_for_other_sources_survive_kill_9(stack: Stack) -> None:
    setup = load_bike_setup(Settings())
    fence, capacity = next((z, c) for z, c in sorted(setup.capacities.items()) if c and c <= 10)
    quotas = {"meituan": QUOTA}
    stack.extra_env["CITYSTREAM_BIKE_QUOTAS"] = orjson.dumps(quotas).decode()
    ensure_topics(Settings(broker=stack.broker_url, topic_prefix=stack.prefix, partitions=stack.partitions))

    deltas = [OccupancyDelta(fence, f"MT-{i}", T0 + 20_000 * i, 1) for i in range(capacity + 2)]
    deltas.append(OccupancyDelta(fence, "MT-0", T0 + 20_000 * (capacity + 3), -1))  # one leaves again
    day = setup.config.local_day(T0)
    marks = [FirstActive("meituan", f"MT-{i}", day, T0 + 20_000 * i) for i in range(QUOTA + 2)]
    late_wm = T0 + 600_000  # past every item
    _send(stack, "bike.occupancy", [{"src": 0, "wm": late_wm, "items": [delta_item(d) for d in deltas]}])
    _send(stack, "bike.fleet", [{"src": 0, "wm": late_wm, "items": [mark_item(m) for m in marks]}])

    first = stack.start_worker()
    occupancy, fleet = stack.topic("bike.occupancy"), stack.topic("bike.fleet")
    first.wait(lambda w: _committed(w, occupancy) and _committed(w, fleet), timeout=120,
               what="the keyed stages to take and commit the messages")
    assert first.metric_sum("citystream_sink_rows_total", table="bike_zone_occupancy") == 0, "nothing applied yet"
    assert first.metric_sum("citystream_sink_rows_total", table="bike_fleet_day") == 0, "nothing applied yet"
    first.stop(signal.SIGKILL)

    _send(stack, "bike.occupancy", [{"src": s, "wm": late_wm, "items": []} for s in (1, 2, 3)])
    _send(stack, "bike.fleet", [{"src": s, "wm": late_wm, "items": []} for s in (1, 2, 3)])
    second = stack.start_worker()

    occ = FenceOccupancy(setup.capacities, allowed_lateness_ms=1 << 62)
    violations = occ.process(deltas) + occ.advance_to(late_wm)
    fc = FleetCounter(quotas, setup.config.utc_offset_ms, allowed_lateness_ms=1 << 62)
    violations += fc.process(marks) + fc.advance_to(late_wm)
    want_occ = [occupancy_row(r, setup.kinds, setup.capacities) for r in occ.drain_minutes()]
    want_fleet = [fleet_row(d) for d in fc.drain_days()]
    want_violations = {r["violation_id"]: r["status"] for r in map(violation_row, violations)}
    assert {v.split(":")[0] for v in want_violations} == {"fence_over_capacity", "over_quota"}

    second.wait_drained({"bike_zone_occupancy": 1, "bike_fleet_day": 1, "bike_violations": 2}, timeout=120)
    second.stop()
    occ_rows, fleet_rows, violation_rows = stack.query(
        "SELECT toUnixTimestamp(minute) * 1000, zone_id, bikes, peak FROM bike_zone_occupancy FINAL ORDER BY ALL",
        "SELECT operator, bikes, quota FROM bike_fleet_day FINAL ORDER BY ALL",
        "SELECT violation_id, status FROM bike_violations FINAL ORDER BY ALL",
    )
    # Newest row per minute (the table keeps the highest version).
    newest = {(r["minute_ms"], r["zone_id"]): r for r in sorted(want_occ, key=lambda r: r["version"])}
    assert occ_rows == sorted([k[0], k[1], r["bikes"], r["peak"]] for k, r in newest.items())
    assert fleet_rows == [["meituan", max(r["bikes"] for r in want_fleet), QUOTA]]
    assert {v: s for v, s in violation_rows} == want_violations
