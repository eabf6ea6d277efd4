"""The benchmark's stand-ins for the bike supervisor (``bench bikes --cost-split``): a precomputed one releases
exactly the real model's events, call by call; a thinned one is the real model on the fixes of one bike in N."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest

from citystream.config import Settings
from models.bikes import BikeSupervisor, SupervisionConfig
from models.bikes.bench import synthetic_fleet
from models.bikes.whatif import (
    PrecomputedSupervisor,
    ThinnedSupervisor,
    dump_events,
    load_events,
    supervisor_factory,
    thinned_bike,
)
from models.gps import FixBatch
from tests.models.test_bike_supervisor import INDEX, P

CONFIG = SupervisionConfig(allowed_lateness_ms=0, grace_ms=60_000, confirm_parking=True, report_parkings=True,
                           occupancy_all_zones=True)  # as the pipeline runs it


def feed() -> list[FixBatch]:
    """A fleet parking at spots in and around the test zones, in batches of 200 fixes."""
    lon, lat = P.inverse(np.array([3.0, 120.0, 300.0, 2.0]), np.array([1.0, 120.0, 300.0, 1.5]))
    fleet = synthetic_fleet(INDEX, (np.asarray(lon), np.asarray(lat)), 60, 40, unlock_p=0.2, seed=3)
    return [fleet.take(np.arange(i, min(i + 200, len(fleet)))) for i in range(0, len(fleet), 200)]


def test_precomputed_releases_the_real_models_events_call_by_call() -> None:
    batches, real = feed(), BikeSupervisor(CONFIG, INDEX)
    per_call = [real.process(b) for b in batches] + [real.advance_to(real.max_seen + 10 * 60_000)]
    events = [e for out in per_call for e in out]
    kinds = {type(e).__name__ for e in events}
    assert {"Violation", "Parked", "OccupancyDelta", "FirstActive"} <= kinds, kinds  # the feed exercises them
    stand_in = PrecomputedSupervisor(CONFIG, INDEX, events)
    got = [stand_in.process(b) for b in batches] + [stand_in.advance_to(real.max_seen + 10 * 60_000)]
    assert got == per_call
    assert stand_in.advance_to(real.max_seen + 20 * 60_000) == []  # each event once


def test_precomputed_marks_each_bike_of_a_batch_changed_unless_stateless() -> None:
    batch = feed()[0]
    real = BikeSupervisor(CONFIG, INDEX)
    events = real.process(batch)
    kept, stateless = (PrecomputedSupervisor(CONFIG, INDEX, events, keep_state=k) for k in (True, False))
    for sup in (kept, stateless):
        sup.process(batch)
    assert set(kept.drain_changes()) == set(batch.bike_id) == set(real.drain_changes())
    assert stateless.drain_changes() == {}


def test_thinned_is_the_real_model_on_the_fixes_of_one_bike_in_n() -> None:
    batches = feed()
    thinned, real = ThinnedSupervisor(CONFIG, INDEX, every=7), BikeSupervisor(CONFIG, INDEX)
    for b in batches:
        mine = np.flatnonzero([thinned_bike(x, 7) for x in b.bike_id])
        assert thinned.process(b) == real.process(b.take(mine))
    assert thinned.stats == real.stats and 0 < thinned.stats["fixes"] < sum(map(len, batches)) / 3
    with pytest.raises(ValueError, match="every must be 1 or more"):
        ThinnedSupervisor(CONFIG, INDEX, every=0)


def test_events_survive_the_file_and_the_factory_checks_it(tmp_path: Path) -> None:
    real = BikeSupervisor(CONFIG, INDEX)
    events = [e for b in feed() for e in real.process(b)]
    path = tmp_path / "events.jsonl"
    dump_events(path, [events, []])
    assert load_events(path) == (tuple(events), ())
    make = supervisor_factory(f"precomputed:{path}", CONFIG, INDEX)
    first = make(0)
    assert isinstance(first, PrecomputedSupervisor) and first.keep_state
    assert not supervisor_factory(f"precomputed-stateless:{path}", CONFIG, INDEX)(1).keep_state
    with pytest.raises(ValueError, match="holds the events of 2 partitions, not of partition 2"):
        make(2)
    with pytest.raises(FileNotFoundError):  # at the worker's start, not at its first batch
        supervisor_factory(f"precomputed:{tmp_path / 'missing.jsonl'}", CONFIG, INDEX)
    assert type(supervisor_factory("", CONFIG, INDEX)(0)) is BikeSupervisor


def test_the_setting_accepts_the_stand_ins_only() -> None:
    assert Settings().bench_supervisor == ""
    for spec in ("thinned:100", "precomputed:/tmp/e.jsonl", "precomputed-stateless:e.jsonl"):
        assert Settings(bench_supervisor=spec).bench_supervisor == spec
    for spec in ("thinned:0", "thinned:", "precomputed:", "faster"):
        with pytest.raises(pydantic.ValidationError):
            Settings(bench_supervisor=spec)
