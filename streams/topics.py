"""Topic names and creation. Input topics are keyed by entity so per-key state stays partition-local."""

from __future__ import annotations

__all__ = ["TOPICS", "FEEDS", "ensure_topics", "partition_for", "partitions_for"]

import logging
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from citystream.config import Settings

log = logging.getLogger(__name__)

#: Short topic names (the full name is ``<prefix>.<short>``) and what travels on them.
TOPICS: dict[str, str] = {
    "bike.gps": "shared-bike GPS fixes or operator batches (input; key bike_id or operator)",
    "sensor.telemetry": "IoT sensor readings (input; key sensor_id)",
    "incident.events": "city-management case events (input; key case_id)",
    "bike.fixes": "validated fixes re-batched per bike partition (internal; binary columns, models/fix_messages.py)",
    "bike.zone-minute": "per-minute, per-zone fix counts: arrays of upserts versioned by source offset (output)",
    "bike.violations": "bike violation open/close events and GPS faults (output; key bike id or fence id)",
    "bike.occupancy": "parked-bike deltas, partitioned by zone id, + each bike partition's watermark (internal)",
    "bike.fleet": "first-active-today marks, partitioned by operator, + each bike partition's watermark (internal)",
    "bike.parkings": "decided parkings: place, zone, distance to the nearest fence (output; arrays per batch)",
    "bike.zone-occupancy": "per-minute parked bikes per zone, upserts versioned per zone (output; arrays)",
    "bike.fleet-day": "distinct active bikes per operator and local day, upserts (output; arrays)",
    "sensor.alerts": "sensor alerts open/close from rules and models (output; key sensor id)",
    "sensor.readings": "scored sensor readings, one row per metric, arrays per batch (output; key partition)",
    "incident.updates": "case states, transitions, deadline breaches and duplicate links (output; key case id)",
    "incident.reports": "applied reports for duplicate linking (internal; key subcategory or category)",
    "deadletter": "bad input with the reason (output)",
}


#: Recorded feeds (``replay/``) and the input topic each is replayed into.
FEEDS: dict[str, str] = {
    "bike_gps": "bike.gps",
    "sensor_telemetry": "sensor.telemetry",
    "incident_events": "incident.events",
}


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client) picks for ``key``.

    Example
    -------
    >>> partition_for(b"MT-000123", 4) == partition_for(b"MT-000123", 4)
    True
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


_SEED, _M = np.uint32(0x9747B28C), np.uint32(0x5BD1E995)


def partitions_for(keys: Sequence[bytes], partitions: int) -> np.ndarray:
    """:func:`partition_for` of every key at once (int64 array): murmur2 over numpy columns, one pass per
    4-byte block of each key length, instead of ~6 us of pure Python a key (kafka-python's ``murmur2``).

    Example
    -------
    >>> keys = [b"MT-000123", b"", b"hellobike", "长乐路0_L_A17001".encode()]
    >>> partitions_for(keys, 12).tolist() == [partition_for(k, 12) for k in keys]
    True
    """
    out = np.empty(len(keys), np.int64)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_length[len(key)].append(i)
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as the Java original's int does
        for length, idx in by_length.items():
            raw = np.frombuffer(b"".join([keys[i] for i in idx]), np.uint8).reshape(len(idx), length)
            h = np.full(len(idx), _SEED ^ np.uint32(length), np.uint32)
            blocks = length // 4
            if blocks:
                words = np.ascontiguousarray(raw[:, :blocks * 4]).view("<u4")
                for b in range(blocks):
                    k = words[:, b] * _M
                    k ^= k >> np.uint32(24)
                    k *= _M
                    h *= _M
                    h ^= k
            tail = raw[:, blocks * 4:].astype(np.uint32)
            if length % 4 >= 3:
                h ^= tail[:, 2] << np.uint32(16)
            if length % 4 >= 2:
                h ^= tail[:, 1] << np.uint32(8)
            if length % 4 >= 1:
                h ^= tail[:, 0]
                h *= _M
            h ^= h >> np.uint32(13)
            h *= _M
            h ^= h >> np.uint32(15)
            out[idx] = (h & np.uint32(0x7FFFFFFF)).astype(np.int64) % partitions
    return out


def ensure_topics(settings: Settings, timeout_s: float = 20.0) -> list[str]:
    """Create missing topics with the configured partitions; returns the names created."""
    admin = KafkaAdminClient(bootstrap_servers=settings.broker_bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic(t) for t in TOPICS]
        missing = [t for t in wanted if t not in existing]
        created = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, settings.partitions, settings.replication)])
                created.append(name)
            except TopicAlreadyExistsError:  # another worker won the race
                pass
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        admin.close()
