"""The monitors of one input partition, its event-time watermark and the offline deadlines.

Outputs depend only on the partition's event order: before each reading the watermark advances to the
reading's time and every sensor whose offline deadline it passed gets its ``offline`` alert (opened at the
deadline), whatever the batch boundaries. Deadlines sit in a heap with lazy deletion.
"""

from __future__ import annotations

__all__ = ["PartitionMonitors"]

import heapq
from collections.abc import Iterable

from models.sensors.kinds import Reading
from models.sensors.monitor import MonitorConfig, SensorMonitor, Update


class PartitionMonitors:
    """Sensor monitors of one partition.

    Example
    -------
    >>> pm = PartitionMonitors(MonitorConfig())
    >>> for i in range(30):
    ...     _ = pm.process(Reading("GAS-1", "gas", 30_000 * i, 24.4, 118.1, {"lel_pct": 1.0 + 0.01 * (i % 3)}))
    ...     _ = pm.process(Reading("GAS-2", "gas", 30_000 * i + 1, 24.4, 118.1, {"lel_pct": 1.0}))
    >>> ups = [pm.process(Reading("GAS-2", "gas", 30_000 * i + 1, 24.4, 118.1, {"lel_pct": 1.0})) for i in range(30, 50)]
    >>> [(a.sensor_id, a.condition, a.opened_ms) for u in ups for a, _ in u.alerts][:1]
    [('GAS-1', 'offline', 1170000)]
    """

    def __init__(self, cfg: MonitorConfig, monitors: Iterable[SensorMonitor] = ()) -> None:
        self.cfg = cfg
        self.monitors: dict[str, SensorMonitor] = {m.sensor_id: m for m in monitors}
        self.watermark = max((m.last_ms for m in self.monitors.values()), default=-1)
        self.deadlines: list[tuple[int, str]] = []
        for m in self.monitors.values():
            self._push(m)
        self.changed: set[str] = set()

    def _push(self, m: SensorMonitor) -> None:
        d = m.offline_deadline(self.cfg)
        if d is not None and "offline" not in m.open:
            heapq.heappush(self.deadlines, (d, m.sensor_id))

    def advance(self, ts_ms: int) -> Update:
        """Move the watermark to ``ts_ms``; open the offline alerts whose deadline it passed."""
        up = Update()
        self.watermark = max(self.watermark, ts_ms)
        while self.deadlines and self.deadlines[0][0] < self.watermark:
            d, sid = heapq.heappop(self.deadlines)
            m = self.monitors[sid]
            if m.offline_deadline(self.cfg) == d:  # else stale: the sensor reported since
                got = m.check_offline(self.watermark, self.cfg)
                if got.alerts:
                    up.alerts += got.alerts
                    up.incidents += got.incidents
                    self.changed.add(sid)
        return up

    def process(self, r: Reading) -> Update:
        """Advance the watermark to ``r.ts``, then score ``r`` on its sensor's monitor."""
        up = self.advance(r.ts)
        m = self.monitors.get(r.sensor_id)
        if m is None or m.kind != r.kind:  # a re-purposed id starts afresh
            m = self.monitors[r.sensor_id] = SensorMonitor(r.sensor_id, r.kind, **self.cfg.detector_params)
        got = m.process(r, self.cfg)
        up.score = got.score
        up.alerts += got.alerts
        up.incidents += got.incidents
        if got.score is not None:
            self.changed.add(r.sensor_id)
            self._push(m)
        return up

    def take_changed(self) -> list[SensorMonitor]:
        """Monitors changed since the last call (to persist), in sensor order."""
        out = [self.monitors[s] for s in sorted(self.changed)]
        self.changed.clear()
        return out
