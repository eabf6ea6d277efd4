"""The ingest's event-time alignment (:func:`streams.ingest_batch.release`): what it hands over and what it holds."""

from __future__ import annotations

import random

import numpy as np

from streams.ingest_batch import release


def _running_max(recs: list[tuple[int, int, None, bytes]]) -> list[int]:
    return np.maximum.accumulate([r[1] for r in recs]).tolist() if recs else []


def test_release_hands_over_up_to_the_slowest_partition_and_keeps_the_rest_in_order() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        held = {}
        for p in rng.sample(range(5), rng.randint(1, 4)):
            t = rng.randint(0, 100)
            recs = []
            for i in range(rng.randint(0, 12)):
                t += rng.choice([0, 1, 5, 40, -3])  # mostly increasing, with ties and small dips
                recs.append((i, t, None, b""))
            held[p] = recs
        before = {p: list(r) for p, r in held.items()}
        out, cutoff = release(held)
        nonempty = {p: r for p, r in before.items() if r}
        if not nonempty:
            assert out == {} and cutoff is None
            continue
        assert cutoff == min(max(r[1] for r in recs) for recs in nonempty.values())
        for p, recs in before.items():
            given, kept = out.get(p, []), held[p]
            assert given + kept == recs  # nothing lost, duplicated or reordered
            assert all(m <= cutoff for m in _running_max(given))
            if kept:
                assert _running_max(recs)[len(given)] > cutoff  # held only what is past the cutoff
        slowest = [p for p, r in nonempty.items() if max(x[1] for x in r) == cutoff]
        assert all(held[p] == [] for p in slowest)  # the slowest partition always moves on


def test_successive_releases_hand_over_records_in_event_time_order_across_partitions() -> None:
    # Partitions fetched in uneven slices. Like the ingest loop, release only when every partition with records
    # still unread holds some (else wait for its fetch): what comes out never goes back in event time.
    rng = random.Random(1)
    sources = {p: [(i, 10 * i + p, None, b"") for i in range(60)] for p in range(3)}
    held: dict[int, list] = {p: [] for p in sources}
    emitted: list[int] = []
    while any(sources.values()) or any(held.values()):
        for p, src in sources.items():
            k = rng.choice([0, 0, 1, 3, 20])
            held[p] += src[:k]
            del src[:k]
        if any(src and not held[p] for p, src in sources.items()):
            continue  # a partition with unread records holds nothing yet: wait for its fetch
        out, _ = release(held)
        emitted += sorted(r[1] for recs in out.values() for r in recs)
    assert emitted == sorted(emitted) and len(emitted) == 180
