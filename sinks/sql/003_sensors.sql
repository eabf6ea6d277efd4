-- Sensors: scored readings (one row per metric) and alerts (open/close upserts), plus dashboard views.
-- Idempotent: a reading is (sensor_id, metric, ts); an alert is its alert_id (sensor|condition|opened ms), the
-- close (version 2) replacing the open (version 1). Times: *_ms columns are EPHEMERAL epoch ms (UTC).

CREATE TABLE IF NOT EXISTS sensor_readings
(
    sensor_id   String,
    kind        LowCardinality(String),
    ts_ms       Int64 EPHEMERAL,
    ts          DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms),
    metric      LowCardinality(String),
    value       Float64,
    score       Float32,
    lat         Float64,
    lon         Float64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (sensor_id, metric, ts);

CREATE TABLE IF NOT EXISTS sensor_alerts
(
    alert_id    String,
    version     UInt8,
    sensor_id   String,
    kind        LowCardinality(String),
    condition   LowCardinality(String),
    source      LowCardinality(String),
    metric      LowCardinality(String),
    value       Float64,
    score       Float32,
    threshold   Float64,
    severity    LowCardinality(String),
    status      LowCardinality(String),
    opened_ms   Int64 EPHEMERAL,
    opened      DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(opened_ms),
    ts_ms       Int64 EPHEMERAL,
    ts          DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms),
    closed_ms   Int64 EPHEMERAL,
    closed      Nullable(DateTime64(3, 'UTC')) DEFAULT if(closed_ms = 0, NULL, fromUnixTimestamp64Milli(closed_ms)),
    subcategory LowCardinality(String),
    case_id     String,
    lat         Float64,
    lon         Float64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;

-- Latest reading per sensor and metric.
CREATE VIEW IF NOT EXISTS v_sensor_latest AS
SELECT sensor_id, kind, metric, argMax(value, ts) AS value, argMax(score, ts) AS score, max(ts) AS last_ts,
       argMax(lat, ts) AS lat, argMax(lon, ts) AS lon
FROM sensor_readings FINAL
GROUP BY sensor_id, kind, metric;

-- Alerts as they stand (open or closed), one row each.
CREATE VIEW IF NOT EXISTS v_sensor_alerts AS
SELECT alert_id, sensor_id, kind, condition, source, metric, value, score, threshold, severity, status, opened, ts,
       closed, subcategory, case_id, lat, lon
FROM sensor_alerts FINAL;

-- Alerts open now.
CREATE VIEW IF NOT EXISTS v_sensor_open_alerts AS
SELECT * FROM v_sensor_alerts WHERE status = 'open';
