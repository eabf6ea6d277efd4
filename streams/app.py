"""Build the Faust application for a role from the settings object.

Agents are registered explicitly by role (``register(pipeline)`` in each ``streams/agents`` module)
rather than by import-time autodiscovery: the app is built from a :class:`~citystream.config.Settings`
passed in, so tests and the demo can build several apps in one process. The consumer group (and the
changelog topic prefix) is ``<app_id>-<role>``: stream workers and sink workers scale independently, each
as a Kafka consumer group over the topics' partitions.
"""

from __future__ import annotations

__all__ = ["Pipeline", "create_pipeline", "AGENT_MODULES", "SeekFirstRecovery"]

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP
from prometheus_client import CollectorRegistry

from citystream.config import Role, Settings
from sinks.clickhouse import ClickHouse
from sinks.metrics import Metrics
from streams.topics import TOPICS
from streams.transport import fetch_wait_transport

log = logging.getLogger(__name__)

#: Modules under ``streams.agents``; each ``register(pipeline)`` adds the agents of the pipeline's role
#: (``pipeline.runs_streams`` / ``pipeline.runs_sinks``).
AGENT_MODULES: tuple[str, ...] = (
    "validate_fixes", "count_zone_minutes", "bikes", "sensors", "incidents",
    "store_fixes", "store_zone_minutes", "store_dead_letters", "monitor",
)


@dataclass
class Pipeline:
    """Everything an agent needs: the app, its topics, settings, metrics and (for sinks) ClickHouse."""

    settings: Settings
    role: Role
    app: faust.App
    metrics: Metrics
    clickhouse: ClickHouse | None
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def runs_streams(self) -> bool:
        """True when this worker runs the detection agents."""
        return self.role in (Role.streams, Role.all)

    @property
    def runs_sinks(self) -> bool:
        """True when this worker runs the ClickHouse writers."""
        return self.role in (Role.sinks, Role.all)

    def topic(self, short: str) -> faust.TopicT:
        """The Faust topic for a short name such as ``bike.gps`` (raw bytes in and out)."""
        if short not in self.topics:
            self.topics[short] = self.app.topic(
                self.settings.topic(short), key_serializer="raw", value_serializer="raw",
                partitions=self.settings.partitions,
            )
        return self.topics[short]


class SeekFirstRecovery(Recovery):
    """Faust's table recovery, but the stream partitions start fetching only once they were sought and the
    stream queues were cleared.

    faust-streaming 0.15 ``Recovery.on_recovery_completed`` resumes the stream partitions, then seeks them to
    their committed offsets, then resumes ``app.flow_control``. The consumer's flow is already running then (it
    was resumed to read the changelogs), so records fetched during the seek go into the agents' queues, and
    ``flow_control.resume()`` clears every such queue (``clear_on_resume``): those records are dropped though
    Faust counts them as read. The seek also resets the read offsets under them, so Faust takes the records read
    meanwhile for a gap and commits past the dropped ones, or the commit stalls on them. A restarted worker then
    never scores those readings (seen: the restart test's second worker idle, its sink rows short).
    Here the stream partitions stay paused through the seek and the clear and are resumed after them.

    While they are held, :data:`HOLD` stays in the consumer's set of active partitions: with every changelog
    partition paused too that set would be empty, and aiokafka's ``fetched_records`` takes an empty set for
    "all partitions": it would hand over the held partitions' records, which Faust drops (not active) after
    aiokafka moved past them; one dropped after its partition's seek is never fetched again.
    """

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer: Any = self.app.consumer
        held: set[TP] = set()
        consumer._get_active_partitions().add(HOLD)
        consumer.resume_partitions = held.update  # Faust resumes only the stream partitions in there
        try:
            await super().on_recovery_completed(generation_id)
            if held and self.app.consumer_generation_id == generation_id:  # else a new rebalance took over
                del consumer.resume_partitions
                consumer.resume_partitions(held)
        finally:
            consumer.__dict__.pop("resume_partitions", None)
            if consumer._active_partitions is not None:
                consumer._active_partitions.discard(HOLD)


#: Never a real partition: keeps the consumer's active set non-empty while :class:`SeekFirstRecovery` holds
#: the stream partitions back.
HOLD = TP("__citystream_hold__", 0)


class _TableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def s_buffer(settings: Settings) -> int:
    """Per-agent stream buffer: a few batches deep."""
    return max(4 * settings.batch_size, 4 * settings.sink_batch_size, 4096)


def create_pipeline(
    settings: Settings, role: Role, *, metrics: Metrics | None = None, clickhouse: ClickHouse | None = None,
) -> Pipeline:
    """Create the Faust app for ``role`` and register its agents.

    ``clickhouse`` is required for roles that run sinks; its ``setup()`` is called by the caller.
    """
    session = settings.session_timeout_s
    app = faust.App(
        f"{settings.app_id}-{role.value}",
        broker=settings.broker,
        store="memory://",  # tables live in memory; their changelog topics in Kafka are the durable copy
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        # Tansu answers JoinGroup after about half the session timeout: keep it short in embedded mode.
        broker_session_timeout=session,
        broker_heartbeat_interval=max(0.2, session / 6),
        broker_rebalance_timeout=max(session, 10.0),
        broker_request_timeout=max(settings.request_timeout_s, session),
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        # One fetcher feeds every agent: a small per-agent queue lets one agent, busy waiting on the broker,
        # block the fetch for all others. Batches are bounded by take(); memory by this many small messages.
        stream_buffer_maxsize=s_buffer(settings),
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
        producer_linger_ms=5,
        producer_max_batch_size=settings.producer_batch_bytes,  # the state writes' round trips: see Settings
        table_standby_replicas=settings.standby_replicas,
        logging_config=None,
        TableManager=_TableManager,  # stream partitions resume after their seek: SeekFirstRecovery
    )
    # Before anything reaches for the transport (app.topic does): Faust's consumer would wait 1500 ms a fetch.
    app.transport = fetch_wait_transport(app, settings.fetch_max_wait_ms)
    if role in (Role.sinks, Role.all) and clickhouse is None:
        raise ValueError(f"role {role.value} runs sinks and needs a ClickHouse")
    pipe = Pipeline(
        settings=settings, role=role, app=app, metrics=metrics or Metrics.create(CollectorRegistry()),
        clickhouse=clickhouse,
    )
    for short in TOPICS:
        pipe.topic(short)
    for name in AGENT_MODULES:
        importlib.import_module(f"streams.agents.{name}").register(pipe)
    return pipe
