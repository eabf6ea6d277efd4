-- Shared-bike supervision: violations (open/close), GPS faults, decided parkings, per-minute zone occupancy,
-- per-operator daily fleet counts, and the views the Bikes dashboard and the demo summary read.
-- Idempotent: every table is a ReplacingMergeTree keyed by the row's identity. A violation is its
-- violation_id (kind:subject:opened ms), the close (version 2) replacing the open (version 1); a zone minute
-- and a fleet day carry a version that grows with every change. Times: *_ms columns are EPHEMERAL epoch ms
-- (UTC); closed_ms = 0 means not closed.

CREATE TABLE IF NOT EXISTS bike_violations
(
    violation_id    String,
    kind            LowCardinality(String),
    subject_id      String,
    operator        LowCardinality(String),
    zone_id         String,
    status          LowCardinality(String),
    opened_ms       Int64 EPHEMERAL,
    opened_at       DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(opened_ms),
    reported_ms     Int64 EPHEMERAL,
    reported_at     DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(reported_ms),
    closed_ms       Int64 EPHEMERAL,
    closed_at       Nullable(DateTime64(3, 'UTC')) DEFAULT if(closed_ms = 0, NULL, fromUnixTimestamp64Milli(closed_ms)),
    time_to_clear_s Nullable(Float64),
    close_reason    LowCardinality(String),
    lon             Nullable(Float64),
    lat             Nullable(Float64),
    distance_m      Nullable(Float64),
    measured        Nullable(UInt32),
    allowed         Nullable(UInt32),
    version         UInt8,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY violation_id;

CREATE TABLE IF NOT EXISTS bike_gps_faults
(
    bike_id     String,
    operator    LowCardinality(String),
    kind        LowCardinality(String),
    ts_ms       Int64 EPHEMERAL,
    ts          DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms),
    lon         Float64,
    lat         Float64,
    speed_kmh   Nullable(Float64),
    distance_m  Nullable(Float64),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (bike_id, ts, kind);

CREATE TABLE IF NOT EXISTS bike_parkings
(
    bike_id     String,
    operator    LowCardinality(String),
    parked_ms   Int64 EPHEMERAL,
    parked_at   DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(parked_ms),
    decided_ms  Int64 EPHEMERAL,
    decided_at  DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(decided_ms),
    place       LowCardinality(String),
    zone_id     String,
    lon         Float64,
    lat         Float64,
    distance_m  Nullable(Float64),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(parked_at)
ORDER BY (bike_id, parked_at);

CREATE TABLE IF NOT EXISTS bike_zone_occupancy
(
    minute_ms   Int64 EPHEMERAL,
    minute      DateTime('UTC') DEFAULT toDateTime(intDiv(minute_ms, 1000), 'UTC'),
    zone_id     String,
    zone_kind   LowCardinality(String),
    bikes       UInt32,
    peak        UInt32,
    capacity    Nullable(UInt32),
    version     UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, zone_id);

CREATE TABLE IF NOT EXISTS bike_fleet_day
(
    day_num     UInt16 EPHEMERAL,
    day         Date DEFAULT toDate(day_num),
    operator    LowCardinality(String),
    bikes       UInt32,
    quota       Nullable(UInt32),
    version     UInt32,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, operator);

-- Every violation once, as of its newest version.
CREATE VIEW IF NOT EXISTS v_bike_violations AS
SELECT violation_id, kind, subject_id, operator, zone_id, status, opened_at, reported_at, closed_at,
       time_to_clear_s, close_reason, lon, lat, distance_m, measured, allowed
FROM bike_violations FINAL;

-- Violations still open (as far as the stream has seen): bikes, fences and operators to act on.
CREATE VIEW IF NOT EXISTS v_bike_open_violations AS
SELECT violation_id, kind, subject_id, operator, zone_id, opened_at, reported_at, lon, lat, distance_m,
       measured, allowed
FROM bike_violations FINAL
WHERE status = 'open';

-- Violations opened per hour (event time) and kind.
CREATE VIEW IF NOT EXISTS v_bike_violations_hourly AS
SELECT toStartOfHour(opened_at) AS hour, kind, count() AS opened, countIf(status = 'closed') AS closed
FROM bike_violations FINAL
GROUP BY hour, kind;

-- How fast operators clear their bikes' parking violations (lock, or zombie age, to unlock or move).
CREATE VIEW IF NOT EXISTS v_bike_time_to_clear AS
SELECT operator, kind, count() AS cleared,
       quantileExact(0.5)(time_to_clear_s) AS median_s, quantileExact(0.9)(time_to_clear_s) AS p90_s
FROM bike_violations FINAL
WHERE status = 'closed' AND kind IN ('no_parking', 'outside_fence', 'zombie')
GROUP BY operator, kind;

-- Distinct active bikes per operator and local day against the quota.
CREATE VIEW IF NOT EXISTS v_bike_fleet_vs_quota AS
SELECT day, operator, bikes, quota, if(quota IS NULL, NULL, bikes - quota) AS over_by
FROM bike_fleet_day FINAL;

-- Fences that went over capacity: when, how full, and for how long.
CREATE VIEW IF NOT EXISTS v_bike_fences_over_capacity AS
SELECT subject_id AS fence_id, status, opened_at, closed_at, measured AS bikes_at_open, allowed AS capacity,
       time_to_clear_s
FROM bike_violations FINAL
WHERE kind = 'fence_over_capacity';

-- Parked bikes per zone and minute (the newest version of each minute).
CREATE VIEW IF NOT EXISTS v_bike_zone_occupancy AS
SELECT minute, zone_id, zone_kind, bikes, peak, capacity
FROM bike_zone_occupancy FINAL;

-- Distance from each decided parking to the nearest fence, in buckets: GPS noise vs parking discipline.
CREATE VIEW IF NOT EXISTS v_bike_lock_distance AS
SELECT multiIf(distance_m IS NULL, '>50 m', distance_m = 0, '0 (inside)', distance_m <= 3, '0-3 m',
               distance_m <= 10, '3-10 m', distance_m <= 20, '10-20 m', distance_m <= 50, '20-50 m', '>50 m') AS bucket,
       multiIf(distance_m IS NULL, 6, distance_m = 0, 0, distance_m <= 3, 1, distance_m <= 10, 2, distance_m <= 20, 3,
               distance_m <= 50, 4, 5) AS bucket_order,
       count() AS parkings, countIf(place = 'parking_fence') AS in_fence
FROM bike_parkings FINAL
GROUP BY bucket, bucket_order;
