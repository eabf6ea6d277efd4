"""The workers' consumers wait ``CITYSTREAM_FETCH_MAX_WAIT_MS`` per fetch, not Faust's 1500 ms (streams/transport.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from citystream.config import Role, Settings
from streams.app import create_pipeline

pytestmark = pytest.mark.integration


async def _latencies(consumer: object, bootstrap: str, topic: str, sends: int) -> list[float]:
    """Seconds from each record's send (acknowledged) to the consumer's ``getmany`` returning it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    out = []
    try:
        await asyncio.sleep(0.5)  # the consumer's first fetches (its position, then a wait on the empty partition)
        for _ in range(sends):
            await asyncio.sleep(0.05)  # the next fetch is in flight, on a partition with nothing new
            t0 = time.perf_counter()
            await producer.send_and_wait(topic, b"x", partition=0)
            for _ in range(5):  # a lost record fails the assertion below (15 s) instead of hanging the run
                if await consumer.getmany(timeout_ms=3000):  # type: ignore[attr-defined]
                    break
            out.append(time.perf_counter() - t0)
    finally:
        await producer.stop()
    return out


def test_the_worker_consumer_waits_the_configured_time_per_fetch(broker_url: str, tmp_path: Path) -> None:
    bootstrap = broker_url.removeprefix("kafka://")
    topic = f"t{uuid.uuid4().hex[:10]}.wait"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    settings = Settings(data_dir=tmp_path, broker=broker_url, fetch_max_wait_ms=100)
    pipe = create_pipeline(settings, Role.streams)
    thread = pipe.app.consumer._thread  # type: ignore[attr-defined]

    async def run() -> list[float]:
        consumer = thread._create_worker_consumer(pipe.app.transport)  # what Faust's consumer thread starts
        consumer.assign([TopicPartition(topic, 0)])  # no group join: seconds on Tansu
        await consumer.start()
        try:
            assert consumer._fetcher._fetch_max_wait_ms == 100  # what each fetch request carries
            return await _latencies(consumer, bootstrap, topic, sends=6)
        finally:
            await consumer.stop()

    got = asyncio.run(run())
    # A fetch of an idle partition is answered when the wait is over (Tansu: at half of it, never when a record
    # comes), and the record sent 50 ms into it waits for that: ~0.7 s each with Faust's 1500 ms, ~0.05 s here.
    assert max(got) < 0.4, [round(s, 3) for s in got]
