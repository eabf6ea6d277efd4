"""Faust's aiokafka transport with the consumer's fetch wait taken from the settings.

faust-streaming 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to change it.
aiokafka keeps one fetch in flight per broker, and a partition whose records are still buffered is left out of the
next fetch; so once the busy partitions' records are handed over, the fetch in flight may hold only idle
partitions, and the busy ones wait until the broker answers it: on Apache Kafka when a record arrives in one of
them or the wait is over, on Tansu at half the wait and never earlier (measured: a record produced while a 1500 ms
fetch waited was read 0.2-0.75 s later; with 500 ms, 6-200 ms). With Faust's value the sinks read ``bike.fixes``
in steps of ~0.76 s and every hop of a result through the stages could add as much.
"""

from __future__ import annotations

__all__ = ["FetchWaitTransport", "fetch_wait_transport"]

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka's Fetcher, which ``start()`` creates from it: set before the start.
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchWaitTransport(faust_aiokafka.Transport):
    """Faust's ``kafka://`` transport whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    Consumer = _Consumer
    fetch_max_wait_ms = 1500  # Faust's own


def fetch_wait_transport(app: faust.App, fetch_max_wait_ms: int) -> FetchWaitTransport:
    """A transport for ``app`` (its ``broker_consumer`` URLs) whose consumer waits ``fetch_max_wait_ms``."""
    transport = FetchWaitTransport(app.conf.broker_consumer, app)
    transport.fetch_max_wait_ms = fetch_max_wait_ms
    return transport
