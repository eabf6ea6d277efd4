-- citystream core tables. Shared by the embedded engine (chDB) and ClickHouse server: applied in order by
-- `sinks.schema.migrate`, recorded in schema_migrations. Never edit an applied file: add a new one.
--
-- Idempotency: every table written by a sink is a ReplacingMergeTree whose sorting key is the identity of
-- the row (a fix = bike + event time; a window = minute + zone + source partition; a dead letter = its
-- source and content). A retried or re-delivered batch therefore never adds rows; read with FINAL (or the
-- v_* views) to see each identity once even before background merges ran.
-- Times: every *_ms column is EPHEMERAL epoch milliseconds (UTC), turned into DateTime64 on insert.

CREATE TABLE IF NOT EXISTS bike_fixes
(
    bike_id     String,
    operator    LowCardinality(String),
    ts_ms       Int64 EPHEMERAL,
    ts          DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms),
    lat         Float64,
    lon         Float64,
    locked      Bool,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (bike_id, ts);

CREATE TABLE IF NOT EXISTS bike_zone_minute
(
    minute_ms   Int64 EPHEMERAL,
    minute      DateTime('UTC') DEFAULT toDateTime(intDiv(minute_ms, 1000), 'UTC'),
    zone        LowCardinality(String),
    partition   UInt16,
    fixes       UInt32,
    bikes       UInt32,
    locked      UInt32,
    version     UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, zone, partition);

-- One row per minute and zone: the partial counts of every source partition, summed.
CREATE VIEW IF NOT EXISTS v_bike_zone_minute AS
SELECT minute, zone, sum(fixes) AS fixes, sum(bikes) AS bikes, sum(locked) AS locked
FROM bike_zone_minute FINAL
GROUP BY minute, zone;

CREATE TABLE IF NOT EXISTS dead_letters
(
    source_topic     LowCardinality(String),
    source_partition UInt16,
    source_offset    UInt64,
    item             Int32,
    key              String,
    reason           LowCardinality(String),
    detail           String,
    payload          String,
    event_ms         Int64 EPHEMERAL,
    received_at      DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(event_ms),
    fingerprint      UInt64 DEFAULT cityHash64(source_topic, key, item, reason, payload)
)
ENGINE = ReplacingMergeTree
ORDER BY (source_topic, reason, fingerprint);
