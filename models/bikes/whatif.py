"""Stand-ins for :class:`BikeSupervisor` that take a part of its work away, for ``citystream bench bikes
--cost-split``: run in the real pipeline, they show what the rest of it costs without that part.

- :class:`PrecomputedSupervisor`: the events come from the pure model's run on the same recording (written by
  :func:`dump_events`, read by :func:`load_events`), released as the partition's watermark passes them, so the
  per-bike rules cost nothing but every output (violations, parkings, occupancy deltas, first-activity marks)
  still flows through the keyed stages and the sinks. With ``keep_state`` every bike of a batch is still
  marked changed, so its ``bike_state`` entry is written as the real supervisor's would be (the entry holds a
  state row the rules did not move on: only its size and count are the real ones).
- :class:`ThinnedSupervisor`: the real model, fed the fixes of one bike in ``every`` only (:func:`thinned_bike`):
  almost no detections, parkings, counts or state entries; the ingest, ``bike.fixes``, zone counting and the
  raw-fix sink unchanged. Its violations are the pure model's on those bikes' fixes, whatever the batches.

Neither is a supervisor to run for real: their violations are the model's only on the recording the events
were computed from, and a thinned one misses almost everything.
"""

from __future__ import annotations

__all__ = ["PrecomputedSupervisor", "ThinnedSupervisor", "thinned_bike", "dump_events", "load_events",
           "supervisor_factory"]

import bisect
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson

from models.bikes.config import SupervisionConfig
from models.bikes.events import Event, FirstActive, GpsFault, OccupancyDelta, Parked, Violation
from models.bikes.supervisor import BikeSupervisor, FixColumns
from models.geo.index import ZoneIndex
from models.gps import FixBatch

_CLASSES: dict[str, type] = {c.__name__: c for c in (Violation, GpsFault, OccupancyDelta, FirstActive, Parked)}


class PrecomputedSupervisor(BikeSupervisor):
    """Releases ``events`` (one partition's, from the pure model) as event time passes them.

    Example
    -------
    >>> import shapely
    >>> from models.geo import Zone
    >>> idx = ZoneIndex([Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.11, 24.51))])
    >>> sup = PrecomputedSupervisor(SupervisionConfig(allowed_lateness_ms=0), idx,
    ...                             [FirstActive("meituan", "MT-1", 0, 5), FirstActive("meituan", "MT-2", 0, 90)])
    >>> [e.bike_id for e in sup.process(FixBatch.from_rows([("MT-1", "meituan", 10, 24.5, 118.1, True)]))]
    ['MT-1']
    >>> [e.bike_id for e in sup.advance_to(100)], sup.states.drain_dirty()
    (['MT-2'], ['MT-1'])
    """

    def __init__(self, config: SupervisionConfig, index: ZoneIndex, events: Sequence[Event],
                 keep_state: bool = True) -> None:
        super().__init__(config, index)
        self._events = sorted(events, key=lambda e: e.ts)
        self._ts = [e.ts for e in self._events]
        self._next = 0
        self.keep_state = keep_state

    def process(self, batch: FixColumns, watermark: int | None = None) -> list[Event]:
        n = len(batch)
        if n:
            rows = self.states.rows_for(batch.bike_id, batch.operator)
            ts = np.asarray(batch.ts, np.int64)
            np.maximum.at(self.states.data["max_seen"], rows, ts)
            if self.keep_state:
                self.states.dirty[rows] = True
            self.max_seen = max(self.max_seen, int(ts.max()))
            self.stats["fixes"] += n
            self.stats["applied"] += n
        if watermark is None:
            watermark = self.max_seen - self.config.allowed_lateness_ms
        return self.advance_to(watermark)

    def advance_to(self, watermark_ms: int) -> list[Event]:
        self.watermark = max(self.watermark, int(watermark_ms))
        end = bisect.bisect_right(self._ts, self.watermark, lo=self._next)
        out, self._next = self._events[self._next:end], max(self._next, end)
        return out


def thinned_bike(bike_id: str, every: int) -> bool:
    """Whether a :class:`ThinnedSupervisor` of ``every`` keeps the bike (CRC-32 of its id: the same in any process).

    >>> sum(thinned_bike(f"B{i:06d}", 100) for i in range(100_000))  # about 1 in 100
    1027
    """
    return zlib.crc32(bike_id.encode()) % every == 0


class ThinnedSupervisor(BikeSupervisor):
    """The real model fed the fixes of one bike in ``every`` only (:func:`thinned_bike`).

    >>> import shapely
    >>> from models.geo import Zone
    >>> idx = ZoneIndex([Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.11, 24.51))])
    >>> sup = ThinnedSupervisor(SupervisionConfig(allowed_lateness_ms=0), idx, every=4)
    >>> _ = sup.process(FixBatch.from_rows([(f"MT-{i}", "meituan", i, 24.5, 118.1, True) for i in range(12)]))
    >>> sorted(sup.states.drain_dirty()) == sorted(f"MT-{i}" for i in range(12) if thinned_bike(f"MT-{i}", 4))
    True
    """

    def __init__(self, config: SupervisionConfig, index: ZoneIndex, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be 1 or more, not {every}")
        super().__init__(config, index)
        self.every = every
        self._keep: dict[str, bool] = {}

    def process(self, batch: FixColumns, watermark: int | None = None) -> list[Event]:
        if self.every > 1 and isinstance(batch, FixBatch) and len(batch):
            keep, every = self._keep, self.every
            for b in set(batch.bike_id).difference(keep):
                keep[b] = thinned_bike(b, every)
            batch = batch.take(np.flatnonzero(np.fromiter(map(keep.__getitem__, batch.bike_id), bool, len(batch))))
        return super().process(batch, watermark)


def dump_events(path: Path, by_partition: Sequence[Sequence[Event]]) -> None:
    """Write each partition's events (one JSON line per partition: ``[[class name, fields], ...]``)."""
    with path.open("wb") as f:
        for events in by_partition:
            f.write(orjson.dumps([[type(e).__name__, e] for e in events]) + b"\n")


@lru_cache(maxsize=2)
def load_events(path: Path) -> tuple[tuple[Event, ...], ...]:
    """Read what :func:`dump_events` wrote (once per process and file).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "events.jsonl"
    >>> dump_events(p, [[FirstActive("meituan", "MT-1", 0, 5)], []])
    >>> load_events(p)
    ((FirstActive(operator='meituan', bike_id='MT-1', day=0, ts=5),), ())
    """
    return tuple(tuple(_CLASSES[name](**fields) for name, fields in orjson.loads(line))
                 for line in path.read_bytes().splitlines())


def supervisor_factory(spec: str, config: SupervisionConfig, index: ZoneIndex
                       ) -> Callable[[int], BikeSupervisor]:
    """The supervisor of a partition by ``spec``: ``""`` the real one; ``thinned:N`` (1 bike in N); ``precomputed:PATH`` or
    ``precomputed-stateless:PATH`` (PATH from :func:`dump_events`, one line per partition).

    >>> import shapely
    >>> from models.geo import Zone
    >>> idx = ZoneIndex([Zone("F", "parking_fence", "F", shapely.box(118.1, 24.5, 118.11, 24.51))])
    >>> supervisor_factory("thinned:100", SupervisionConfig(), idx)(0).every
    100
    >>> supervisor_factory("faster", SupervisionConfig(), idx)
    Traceback (most recent call last):
    ...
    ValueError: not a supervisor stand-in: 'faster' (thinned:N, precomputed:PATH, precomputed-stateless:PATH)
    """
    kind, _, arg = spec.partition(":")
    if not spec:
        return lambda p: BikeSupervisor(config, index)
    if kind == "thinned" and arg.isdigit() and int(arg) >= 1:
        return lambda p: ThinnedSupervisor(config, index, int(arg))
    if kind in ("precomputed", "precomputed-stateless") and arg:
        events = load_events(Path(arg))  # read now: a missing file stops the worker at its start

        def make(p: int) -> BikeSupervisor:
            if p >= len(events):
                raise ValueError(f"{arg} holds the events of {len(events)} partitions, not of partition {p}")
            return PrecomputedSupervisor(config, index, events[p], keep_state=kind == "precomputed")
        return make
    raise ValueError(f"not a supervisor stand-in: {spec!r} (thinned:N, precomputed:PATH, precomputed-stateless:PATH)")
