"""The vectorized partitioner picks Kafka's default partition (murmur2, as kafka-python and the Java client)."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner.default import murmur2

from streams.topics import partition_for, partitions_for


@pytest.mark.parametrize("partitions", [1, 4, 6, 12, 97])
def test_every_key_length_and_byte_matches_kafka_python(partitions: int) -> None:
    rng = random.Random(partitions)
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(3000)]
    keys += [b"\xff" * n for n in range(9)] + [b"\x80\x00\x7f"]  # bytes with the sign bit, zero bytes
    assert partitions_for(keys, partitions).tolist() == [(murmur2(k) & 0x7FFFFFFF) % partitions for k in keys]


def test_real_bike_ids_and_fence_ids() -> None:
    keys = [f"{i * 2654435761 % 2**128:032x}".encode() for i in range(500)]  # DCIC ids: 32 hex digits
    keys += [f"长乐路{i}_L_A{17000 + i}".encode() for i in range(200)]
    got = partitions_for(keys, 12)
    assert got.dtype.kind == "i" and got.tolist() == [partition_for(k, 12) for k in keys]
    assert len(set(got.tolist())) == 12  # spread over every partition


def test_empty() -> None:
    assert partitions_for([], 4).tolist() == []
