"""A bike supervisor whose clock waits for a source that sends nothing more still moves on once that source has
been silent for ``CITYSTREAM_BIKE_IDLE_SOURCE_S``: the ingest's idle ticks make it look at its clock again.

The fixes are produced straight to ``bike.fixes`` with source 0's mark "not read to its end", and ``bike.gps``
stays empty, so no other message ever reaches the supervisor: without the ticks it holds the fixes forever.
"""

from __future__ import annotations

import pytest
from kafka import KafkaProducer

from citystream.config import Settings
from models.bikes import BikeSupervisor, Violation
from models.fix_messages import encode_fixes
from models.gps import FixBatch
from streams.agents.bikes_geo import load_bike_setup
from streams.agents.bikes_rows import violation_row
from streams.topics import ensure_topics, partition_for
from tests.integration.harness import Stack

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
IDLE_S = 3  # a source silent this long (wall time) stops holding the clock; ticks every IDLE_S / 4


def _supervise_parked_bike(stack: Stack, bike: str, read_to_end: bool, idle_s: float, what: str) -> None:
    """Produce a bike parked in a no-parking zone for 20 minutes straight to ``bike.fixes``, marked as source 0's
    fixes (``read_to_end`` or not), start one worker with ``CITYSTREAM_BIKE_IDLE_SOURCE_S=idle_s``, wait (90 s at
    most) for its violations and check them against the pure model at the watermark every source read to its end
    or silent gives: the newest fix minus the lateness. ``bike.gps`` stays empty."""
    setup = load_bike_setup(Settings())
    zone = next(z for z in setup.index.zones if z.kind == "no_parking")
    spot = zone.geometry.representative_point()
    fixes = FixBatch.from_rows([(bike, "meituan", T0 + 30_000 * i, spot.y, spot.x, True) for i in range(40)])
    newest = int(fixes.ts.max())
    model = BikeSupervisor(setup.config, setup.index)
    want = {r["violation_id"]: r["status"] for r in map(
        violation_row, (e for e in model.process(fixes, watermark=newest - setup.config.allowed_lateness_ms)
                        if isinstance(e, Violation)))}
    assert any(v.startswith("no_parking:") for v in want), "the bike must be a no-parking violation by then"

    stack.extra_env["CITYSTREAM_BIKE_IDLE_SOURCE_S"] = str(idle_s)
    ensure_topics(Settings(broker=stack.broker_url, topic_prefix=stack.prefix, partitions=stack.partitions))
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap)
    try:
        producer.send(stack.topic("bike.fixes"), encode_fixes(fixes, src=[[0, newest, read_to_end]]),
                      partition=partition_for(bike.encode(), stack.partitions), timestamp_ms=newest)
        producer.flush(30)
    finally:
        producer.close()

    worker = stack.start_worker()
    # Not wait_drained: ticks keep a message in flight, so the lags are seldom all 0.
    worker.wait(lambda w: w.metric_sum("citystream_sink_rows_total", table="bike_violations") >= len(want),
                timeout=90, what=what)
    worker.stop()
    rows = stack.query("SELECT violation_id, status FROM bike_violations FINAL ORDER BY ALL")[0]
    assert {v: s for v, s in rows} == want


def test_a_source_gone_quiet_does_not_hold_the_supervisor_forever(stack: Stack) -> None:
    """Source 0 is marked not read to its end and sends nothing more: it holds the clock until silent for IDLE_S."""
    _supervise_parked_bike(stack, "MT-TICK", read_to_end=False, idle_s=IDLE_S,
                           what="the supervisor to move on and its violations to be stored")


def test_an_ingest_with_only_empty_partitions_tells_the_supervisors_they_are_read(stack: Stack) -> None:
    """Operator batches are keyed by operator, so with more ``bike.gps`` partitions than operators some are empty,
    and a worker can hold only empty ones. Its ingest hands nothing over, yet must mark its partitions read to their
    end: the supervisors otherwise wait for them as sources not read yet until they count as silent
    (``CITYSTREAM_BIKE_IDLE_SOURCE_S``, 300 s by default; an hour here, far beyond the test's timeout).

    Source 0 is marked read to its end; every ``bike.gps`` partition is empty and the one worker holds them all."""
    _supervise_parked_bike(stack, "MT-EMPTY", read_to_end=True, idle_s=3600,
                           what="the supervisor to hear that the empty sources are read to their end")
