"""Build the Faust application for a role from the settings object.

Agents are registered explicitly by role (``register(pipeline)`` in each ``streams/agents`` module)
rather than by import-time autodiscovery: the app is built from a :class:`~citystream.config.Settings`
passed in, so tests and the demo can build several apps in one process. The consumer group (and the
changelog topic prefix) is ``<app_id>-<role>``: stream workers and sink workers scale independently, each
as a Kafka consumer group over the topics' partitions.
"""

from __future__ import annotations

__all__ = ["Pipeline", "create_pipeline", "AGENT_MODULES"]

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from citystream.config import Role, Settings
from sinks.clickhouse import ClickHouse
from sinks.metrics import Metrics
from streams.topics import TOPICS

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
        table_standby_replicas=settings.standby_replicas,
        logging_config=None,
    )
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
