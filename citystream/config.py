"""One settings object, read once at startup from ``CITYSTREAM_*`` environment variables.

Nothing else in the project reads ``os.environ``: the CLI builds :class:`Settings` and passes it (or
one of its sections) to constructors. Tests construct it directly.
"""

from __future__ import annotations

__all__ = ["Settings", "Role", "load_settings", "DEV_PHONE_HASH_KEY"]

from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Development-only default of ``CITYSTREAM_PHONE_HASH_KEY`` (never use it in production).
DEV_PHONE_HASH_KEY = "citystream-DEV-ONLY-phone-hash-key"


class Role(StrEnum):
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

    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore", env_parse_none_str="null")

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
    standby_replicas: int = Field(
        1, ge=0,
        description="Standby copies of each table partition kept warm by other workers of the role (fast failover). "
        "Each costs its worker a replay of the changelog: 0 where workers share a few cores.",
    )
    batch_size: int = Field(2000, ge=1, description="Max messages an agent takes per batch.")
    batch_within_s: float = Field(0.25, gt=0, description="Max seconds an agent waits to fill a batch.")
    ingest_batch_size: int = Field(
        20000, ge=1, description="Max messages the GPS ingest stage (a plain consumer) reads, handles and commits at once.",
    )
    ingest_max_backlog: int = Field(
        100_000, ge=1,
        description="Fixes the GPS ingest may have sent ahead of the bike supervisor in this worker before it waits "
        "(backpressure: a worker catching up on a long backlog keeps it in Kafka, not in memory).",
    )
    producer_batch_bytes: int = Field(
        262_144, ge=16_384, le=1_000_000,
        description="Max bytes of one record batch the workers produce (aiokafka's batch size). aiokafka keeps one "
        "batch per partition in flight, so a state write of thousands of small entries waits one broker round trip "
        "per batch: Faust's default, 16 KiB, made it a chain of ~100 per partition and write. At most the producer's "
        "request size (1 MB) and the broker's message.max.bytes (1 MiB by default).",
    )
    fetch_max_wait_ms: int = Field(
        200, ge=10, le=5_000,
        description="How long the broker may hold a fetch that finds no new records (every consumer of the workers). "
        "A consumer keeps one fetch in flight per broker, and partitions with records still buffered are left out of "
        "it, so a fetch of only idle partitions holds the busy ones back for this long (Faust's own value is 1500). "
        "Tansu answers such a fetch at half of it and never earlier.",
    )
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
    # Bike supervision (streams/agents/bikes*.py, models/bikes; zones from ``geography`` below). JSON for the
    # list and the mapping.
    fences_csv: Path | None = Field(None, description="Extra parking fences in the DCIC format (FENCE_ID,FENCE_LOC).")
    bike_fence_capacity: int = Field(10, ge=0, description="Capacity given to fences of the DCIC file (it has none).")
    bike_grace_s: int = Field(300, ge=0, description="How long a bike may stand where it must not park before it is a violation.")
    bike_fence_tolerance_m: float = Field(20.0, ge=0, description="A parked bike's fix this close to a fence counts as in it (GPS noise).")
    bike_no_parking_tolerance_m: float = Field(12.0, ge=0, description="A fix this close to a no-parking zone counts as in it, unless a fence is nearer.")
    bike_confirm_parking: bool = Field(True, description="Decide a parked bike's place only once two of its fixes agree (multipath-proof).")
    bike_move_threshold_m: float = Field(80.0, gt=0, description="A parked bike whose fixes agree this far from where it parked was moved.")
    bike_zombie_days: float = Field(7.0, gt=0, description="A bike locked and unmoved this long is a zombie.")
    bike_max_speed_kmh: float = Field(60.0, gt=0, description="A fix implying a higher speed is an impossible jump (GPS fault).")
    bike_operators: list[str] = Field(
        ["meituan", "hellobike", "qingju"], description="Registered operators (JSON list); bikes of others are black bikes.",
    )
    bike_unattributed_operator: str | None = Field(
        "unknown", description="The operator name of fixes whose feed does not say (what `citystream import dcic` "
        "puts on every fix by default): their bikes are counted, never black bikes. null: none.",
    )
    bike_quotas: dict[str, int] = Field(
        {"meituan": 440, "hellobike": 340, "qingju": 220},
        description="Fleet quota per operator: distinct active bikes per local day (JSON object).",
    )
    max_clock_skew_s: float | None = Field(
        300.0, ge=0, description="A GPS fix, sensor reading or case event dated more than this after its Kafka "
        "message's timestamp (the sender's clock, or the broker's append time) is dead-lettered as clock_ahead: one "
        "source with its clock ahead would otherwise move its partition's event time, and so every bike's, sensor's "
        "or case's, into the future. Replays stamp each message with its event time. null turns the check off.",
    )
    bike_idle_source_s: float = Field(
        300.0, gt=0, description="Bike supervision waits for every bike.gps partition's progress, fence and fleet counts "
        "for every bike partition's event time; a source silent this long (wall time) is skipped. Long, so a busy "
        "partition delayed by a restart or load is never taken for idle.",
    )
    bench_supervisor: str = Field(
        "", pattern=r"^(thinned:[1-9][0-9]*|precomputed(-stateless)?:.+)?$",
        description="Benchmark only (`citystream bench bikes --cost-split` sets it on its workers): a stand-in for "
        "the bike supervisor that takes part of its work away, to measure what the rest of the pipeline costs "
        "(models/bikes/whatif.py): `thinned:N` feeds it the fixes of one bike in N, `precomputed:PATH` releases the pure model's "
        "events from PATH (`precomputed-stateless:PATH` also writes no per-bike state). Empty: the real supervisor.",
    )
    log_level: str = Field("warning", description="Worker log level.")
    # -- incidents (city-management cases) --
    geography: Path | None = Field(
        None, description="GeoJSON of zones (district, street, community, grid, fences, ...). None: the bundled "
        "sample's geography (replay/sample/geography.geojson).",
    )
    phone_hash_key: SecretStr = Field(
        SecretStr(DEV_PHONE_HASH_KEY),
        description="Secret key of the HMAC that replaces reporter phone numbers. The default is for development "
        "only and logged as a warning: set CITYSTREAM_PHONE_HASH_KEY in production and keep it out of ClickHouse.",
    )
    incident_deadlines_s: dict[str, float] = Field(
        default_factory=dict,
        description='Time-limit overrides in seconds, by step or code:step, as JSON: {"dispatch": 600, "E0515:handle": 1800}.',
    )
    incident_duplicate_m: float = Field(50.0, gt=0, description="Reports of one problem lie at most this far apart (m).")
    incident_duplicate_window_s: int = Field(1800, ge=0, description="... and at most this far apart in time (s).")
    incident_duplicate_match: str = Field(
        "subcategory", pattern="^(subcategory|category)$", description="What duplicate reports share: subcategory or category.",
    )
    incident_retention_s: int = Field(86400, ge=0, description="Closed or rejected cases leave stream state after this long.")

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
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]  # validated
