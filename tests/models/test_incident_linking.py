from __future__ import annotations

import random
from typing import Any

from models.incidents.linking import ReportLinker

T0 = 1795244400000
MIN = 60_000


def rep(case_id: str, minute: float, lat: float = 24.48, sub: str = "E0102") -> dict[str, Any]:
    return {"case_id": case_id, "ts": T0 + int(minute * MIN), "category": sub[:3], "subcategory": sub,
            "lat": lat, "lon": 118.09}  # fmt: skip


# Two upstream partitions, each sending its reports in ts order, then its frontier.
UPSTREAM = {
    0: [rep("A", 0), rep("C", 12, 24.4801), rep("E", 50, 24.5), rep("G", 70)],
    1: [rep("B", 5, 24.4802), rep("D", 20, 24.4900), rep("F", 55, 24.5002, "E0103"), rep("H", 71, 24.4801)],
}


def feed(order: list[int], chunk: int) -> list[tuple[str, str]]:
    """Deliver the upstream streams interleaved by ``order`` (which partition goes next), ``chunk`` at a time."""
    lk = ReportLinker(0, upstream=2)
    pos = {0: 0, 1: 0}
    links = []
    for p in order:
        items = UPSTREAM[p][pos[p]:pos[p] + chunk]
        if not items:
            continue
        pos[p] += len(items)
        for r in items:
            lk.push(r["subcategory"], r)
        lk.advance(p, items[-1]["ts"] + 1)
        links += [(c, row["parent_case_id"]) for c, _, row in lk.drain().updates]
    for p in (0, 1):
        lk.advance(p, T0 + 1000 * MIN)
    links += [(c, row["parent_case_id"]) for c, _, row in lk.drain().updates]
    return links


def test_links_do_not_depend_on_how_partitions_interleave() -> None:
    want = [("B", "A"), ("C", "A"), ("H", "G")]  # D is 111 m away, F another subcategory, E/G too late for A
    rnd = random.Random(1)
    for _ in range(20):
        order = [rnd.choice([0, 1]) for _ in range(40)]
        assert feed(order, rnd.choice([1, 2, 3])) == want


def test_linking_waits_for_every_upstream_frontier() -> None:
    lk = ReportLinker(0, upstream=3)
    lk.push("E0102", rep("A", 0))
    lk.push("E0102", rep("B", 1))
    lk.advance(0, T0 + 60 * MIN)
    lk.advance(1, T0 + 60 * MIN)
    assert lk.frontier is None and lk.drain().updates == []
    lk.advance(2, T0 + 60 * MIN)
    assert [c for c, _, _ in lk.drain().updates] == ["B"]


def test_restore_and_redelivery() -> None:
    lk = ReportLinker(2, upstream=1)
    lk.push("E0102", rep("A", 0))
    lk.push("E0102", rep("B", 3))
    lk.advance(0, T0 + 2 * MIN)  # A released, B held
    out = lk.drain()
    saved = {k: lk.snapshot(k) for k in out.dirty}
    frontiers = lk.snapshot_frontiers()
    other = ReportLinker(3, upstream=1)
    assert not other.restore(frontiers)
    again = ReportLinker(2, upstream=1)
    assert all(again.restore(v) for v in [frontiers, *saved.values()] if v)
    again.push("E0102", rep("A", 0))  # re-delivered after an upstream restart
    again.push("E0102", rep("B", 3))
    again.advance(0, T0 + 10 * MIN)
    out = again.drain()
    assert [(c, row["parent_case_id"]) for c, _, row in out.updates] == [("B", "A")]
    assert out.counts["link_duplicate"] == 2
