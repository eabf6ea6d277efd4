"""The ingest's record batch: partitions interleaved exactly as ``heapq.merge`` by timestamp would, sources of
records for dead letters; and the partition chunks of the GPS stage."""

from __future__ import annotations

import heapq
import random
from itertools import repeat
from types import SimpleNamespace

import numpy as np
import orjson
from aiokafka.structs import TopicPartition

from models.gps import decode_gps_many
from streams.agents.validate_fixes import partition_chunks, split_by_partition
from streams.ingest_batch import Batch, RecordSource, as_records
from streams.topics import partition_for

FIX = {"bike_id": "MT-1", "operator": "meituan", "ts": 1795244405000, "lat": 24.48, "lon": 118.09, "locked": True}


def test_batch_interleaves_partitions_like_heapq_merge() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        by_tp = {}
        for p in rng.sample(range(6), rng.randint(1, 4)):
            ts = [rng.randint(0, rng.choice([3, 50, 10_000])) for _ in range(rng.randint(1, 15))]  # dips and ties
            by_tp[TopicPartition("t", p)] = [(100 * p + i, t, b"k%d" % p, b"%d:%d" % (p, i)) for i, t in enumerate(ts)]
        want = list(heapq.merge(*(zip(recs, repeat(tp)) for tp, recs in by_tp.items()), key=lambda x: x[0][1]))
        batch = Batch(by_tp)
        assert len(batch) == len(want)
        assert batch.values() == [r[3] for r, _ in want]
        assert batch.timestamps().tolist() == [r[1] for r, _ in want]
        for i, (r, tp) in enumerate(want):
            assert batch.source(i) == RecordSource(tp.topic, tp.partition, r[0], r[2], r[1])


def test_consumer_records_become_record_tuples() -> None:
    tp = TopicPartition("t", 3)
    rec = SimpleNamespace(topic="t", partition=3, offset=7, timestamp=1795244405123, key=b"MT-9", value=b"{}")
    batch = Batch(as_records({tp: [rec]}))
    assert batch.values() == [b"{}"]
    assert batch.source(0) == RecordSource("t", 3, 7, b"MT-9", 1795244405123)


def test_records_without_a_timestamp_have_minus_one() -> None:  # message format v0: no limit on their fixes
    tp = TopicPartition("t", 0)
    batch = Batch({tp: [(0, None, None, b"{}"), (1, 5, None, b"{}")]})  # type: ignore[list-item]
    assert batch.timestamps().tolist() == [-1, 5]


def test_partition_chunks_are_the_split_cut_in_order() -> None:
    rng = np.random.default_rng(1)
    bikes = [f"MT-{i:05d}" for i in rng.integers(0, 300, 3000)]
    batch, _ = decode_gps_many([orjson.dumps({**FIX, "bike_id": b, "ts": FIX["ts"] + i}) for i, b in enumerate(bikes)])
    parts = split_by_partition(batch, 4)
    chunks = partition_chunks(batch, 4, size=170)
    assert [p for p, _ in chunks] == sorted(p for p, _ in chunks)
    for p, part in parts.items():
        mine = [c for q, c in chunks if q == p]
        assert all(0 < len(c) <= 170 for c in mine)
        assert [b for c in mine for b in c.bike_id] == part.bike_id
        assert np.concatenate([c.ts for c in mine]).tolist() == part.ts.tolist()
        assert all(partition_for(b.encode(), 4) == p for b in part.bike_id)
    one = partition_chunks(batch, 1)
    assert len(one) == 1 and one[0][1] is batch  # a single partition gets the batch itself, uncopied
    assert partition_chunks(decode_gps_many([])[0], 4) == []
