"""One settings object, read once at startup from ``CITYSTREAM_*`` environment variables.

Nothing else in the project reads ``os.environ``: the CLI builds :class:`Settings` and passes it (or
one of its sections) to constructors. Tests construct it directly.
"""

from __future__ import annotations

__all__ = ["Settings", "Role", "load_settings"]

from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Role(str, Enum):
    """Which agents a worker runs: detection (``streams``), ClickHouse writers (``sinks``) or both."""

    streams = "streams"
    sinks = "sinks"
    all = "all"


class Settings(BaseSettings):
    """Runtime settings of a citystream process.

    Every field can be set from the environment as ``CITYSTREAM_<FIELD>`` (upper case), e.g.
    ``CITYSTREAM_BROKER=kafka://kafka:9092`` or ``CITYSTREAM_CLICKHOUSE_DSN=http://default:pw@ch:8123/citystream``.

    Example
    -------
    >>> s = Settings(broker="kafka://127.0.0.1:9092", clickhouse_dsn="chdb:///tmp/cs")
    >>> s.broker_bootstrap
    '127.0.0.1:9092'
    >>> s.embedded_clickhouse
    True
    """

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore")

    app_id: str = Field("citystream", description="Faust application id; the consumer group is <app_id>-<role>.")
    broker: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap URL(s), `kafka://host:port[;host:port]`.")
    clickhouse_dsn: str = Field(
        "chdb://./var/clickhouse",
        description="`chdb://./relative/dir` or `chdb:///abs/dir` (embedded, in-process) or `http://user:pass@host:8123/db` (server).",
    )
    clickhouse_password: SecretStr | None = Field(None, description="Overrides the password in the DSN.")
    topic_prefix: str = Field("citystream", description="Prefix of every topic name.")
    partitions: int = Field(4, ge=1, le=1024, description="Partitions of the input and output topics.")
    replication: int = Field(1, ge=1, description="Replication factor of topics this app creates.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port (0 = off).")
    data_dir: Path = Field(Path("./var"), description="Local state: Faust tables, embedded ClickHouse, recordings.")
    session_timeout_s: float = Field(
        6.0, gt=0, description="Kafka consumer session timeout. Short values make embedded (Tansu) start fast."
    )
    request_timeout_s: float = Field(
        15.0, gt=0,
        description="Kafka request timeout (>= session timeout). A fetch the broker never answers is retried after it; "
        "Faust's default (90 s) turns one lost fetch on the embedded broker into a long stall.",
    )
    batch_size: int = Field(2000, ge=1, description="Max messages an agent takes per batch.")
    batch_within_s: float = Field(0.25, gt=0, description="Max seconds an agent waits to fill a batch.")
    sink_batch_size: int = Field(5000, ge=1, description="Max messages a sink takes per ClickHouse insert.")
    sink_within_s: float = Field(1.0, gt=0, description="Max seconds a sink buffers before inserting.")
    sink_max_retries: int = Field(8, ge=0, description="Insert retries on transient errors (capped backoff).")
    zone_cell_m: float = Field(500.0, gt=0, description="Size of the grid cells used as zones when no geography is loaded.")
    allowed_lateness_s: int = Field(300, ge=0, description="How late (event time) a record may arrive and still count.")
    monitor_interval_s: float = Field(5.0, gt=0, description="How often lag metrics are refreshed.")
    changelog_end_markers: bool = Field(
        True,
        description="Close each state write with a one-record marker batch per changelog partition. Needed on "
        "Tansu, whose ListOffsets(latest) returns the start of the last batch, so Faust's table recovery would "
        "stop before the last batch; harmless but unneeded on Apache Kafka (docker-compose turns it off).",
    )
    shutdown_timeout_s: float = Field(8.0, gt=0, description="Upper bound on a graceful worker shutdown.")
    log_level: str = Field("warning", description="Worker log level.")

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, v: str) -> str:
        if not v.startswith("kafka://"):
            raise ValueError("broker must look like kafka://host:port")
        return v

    @field_validator("clickhouse_dsn")
    @classmethod
    def _check_dsn(cls, v: str) -> str:
        scheme = urlsplit(v).scheme
        if scheme not in {"chdb", "http", "https", "clickhouse"}:
            raise ValueError("clickhouse_dsn must start with chdb:///, http://, https:// or clickhouse://")
        return v

    @property
    def broker_bootstrap(self) -> str:
        """``host:port[,host:port]`` for plain Kafka clients."""
        return self.broker.removeprefix("kafka://").replace(";", ",")

    @property
    def embedded_clickhouse(self) -> bool:
        """True when ClickHouse runs in-process through chDB."""
        return self.clickhouse_dsn.startswith("chdb:")

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as ``bike.gps``."""
        return f"{self.topic_prefix}.{name}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, then apply explicit overrides (CLI options)."""
    # pydantic-settings gives init arguments priority over the environment, and validates both.
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
