"""Per-minute, per-zone counts of distinct GPS fixes, exact under replays, retries and restarts.

One :class:`ZoneMinuteCounter` serves one partition of the (bike-keyed) fixes topic. Two kinds of
state make the counts exact without broker transactions:

- per bike: the event times of its recent accepted fixes and the windows it was counted in. A fix seen
  before (the same bike and ``ts``: a replayed recording, an operator resend) is a *duplicate*; a fix older
  than the bike's newest fix minus the allowed lateness is *late*. Both are counted, neither is aggregated.
  The decision depends only on the bike's own fix order, so it is the same at any replay speed.
- per window (one per minute and zone): the counts and the offset of the last message that changed them.
  A message re-delivered after a crash (offset <= ``last_offset``) does not count twice.

The caller persists the changed state in this order (see ``docs/architecture.md``): the zones new since the
last write (:meth:`ZoneMinuteCounter.zone_entries`; bike entries refer to zones by code), then the windows
(:meth:`ZoneMinuteCounter.window_state`, :func:`pack_windows`), then the bikes
(:meth:`ZoneMinuteCounter.bike_entries`), and emits one upsert row per touched window, versioned by
``last_offset``. :meth:`ZoneMinuteCounter.load` rebuilds a counter from those entries (and reads the
older JSON bike and window entries too).

The state is columnar, a window being the int ``minute << 32 | zone code``: a bike is a row of one int64
matrix (newest fix time; a right-aligned ring of recent fix times in the order accepted; the codes of the
windows it was counted in, in no order, where windows past its lateness horizon are free slots), a window a
row of a ``(fixes, bikes, locked, last_offset)`` matrix. The state entries are those rows' bytes. :meth:`ZoneMinuteCounter.process` applies a message in rounds:
round ``r`` takes the ``r``-th fix of every bike in the message, all bikes at once with numpy (usually one
round: one fix per bike and message); bikes with many fixes in one message finish fix by fix in Python. It
gives exactly the result of applying the fixes one by one in message order
(``tests/models/test_zone_counts_fast.py`` checks it against that loop).

Modules: ``counter`` applies messages (:class:`ZoneMinuteCounter`); ``state`` holds the columnar state, its
views and its entries (:class:`~models.zone_counts.state.CounterState`, the counter's base); ``records`` the
readable records and entry formats.
"""

from __future__ import annotations

__all__ = ["BikeSeen", "Window", "ZoneMinuteCounter", "MINUTE_MS", "BatchOutcome", "pack_windows", "union"]

from models.zone_counts.counter import ZoneMinuteCounter
from models.zone_counts.records import (
    MINUTE_MS,
    BatchOutcome,
    BikeSeen,
    Window,
    pack_windows,
    union,
)
