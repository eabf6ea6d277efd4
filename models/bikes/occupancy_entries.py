"""The changelog entries of :class:`~models.bikes.occupancy.FenceOccupancy`: one per bike and zone, one head per
zone, so a state write costs the bikes that changed rather than the zone's whole set.

- bike ``[zone, bike]`` (JSON key) -> ``[since, left, seq, prev_since, prev_left]``: since when it is parked there
  and when it last left (null: not), the sequence number of the state write, and its value before that write
  (its undo record);
- head ``[zone]`` -> ``{"open": [opened_ts, count, limit] | null, "minute": [minute, peak, version] | null,
  "seq": seq}``.

A state write puts its bikes first, then the heads of their zones (a zone with a changed bike always gets its
head), then deletes. Kafka keeps the order within the changelog partition, so a crash leaves a prefix: a bike
whose ``seq`` is newer than its zone's head belongs to a write that did not finish, and loading takes its value
from before that write. The zone then is exactly as before the write (bikes, minute version, open violation), and
the stage's items re-applied after the restart give the rows of the uninterrupted run (one entry per zone, the
earlier layout, gave the same atomicity by rewriting the whole zone, which for a fence-required island is thousands
of bikes and a day of departures per change). A bike entry left with neither value is deleted by the next write
(after that write's heads, so a crash in it can still undo the empty value).

Whole-zone entries of earlier versions (key: the zone id, value: :meth:`FenceOccupancy.export_zones`'s JSON) are
still read; their bikes are written per bike by the next state write, which then deletes the old key.
"""

from __future__ import annotations

__all__ = ["drain", "load"]

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from models.bikes.events import opened

if TYPE_CHECKING:
    from models.bikes.occupancy import FenceOccupancy


def bike_key(zone_id: str, bike_id: str) -> bytes:
    return orjson.dumps([zone_id, bike_id])


def head_key(zone_id: str) -> bytes:
    return orjson.dumps([zone_id])


def drain(occ: FenceOccupancy) -> list[tuple[bytes, bytes | None]]:
    """The state write of the changes since the last one (see the module doc), and reset the change tracking.

    Example
    -------
    >>> from models.bikes import FenceOccupancy, OccupancyDelta
    >>> occ = FenceOccupancy({"F1": 5}, allowed_lateness_ms=0)
    >>> _ = occ.process([OccupancyDelta("F1", "a", 1000, 1)])
    >>> [(k, v) for k, v in drain(occ)]
    [(b'["F1","a"]', b'[1000,null,0,null,null]'), (b'["F1"]', b'{"open":null,"minute":[0,1,1],"seq":0}')]
    >>> drain(occ)  # nothing changed since
    []
    """
    stale, occ.stale = occ.stale, set()
    undo, occ.undo = occ.undo, {}
    zones, occ.dirty = occ.dirty, set()
    legacy, occ.legacy = occ.legacy, set()
    if not undo and not zones and not stale and not legacy:
        return []
    seq = occ.seq
    occ.seq += 1
    out: list[tuple[bytes, bytes | None]] = []
    written = set()
    for (z, b), (prev_since, prev_left) in undo.items():
        since, left = occ.parked.get(z, {}).get(b), occ.left.get(z, {}).get(b)
        key = bike_key(z, b)
        out.append((key, orjson.dumps([since, left, seq, prev_since, prev_left])))
        written.add(key)
        if since is None and left is None:
            occ.stale.add(key)
        zones.add(z)
    for z in sorted(zones):
        v = occ.open.get(z)
        out.append((head_key(z), orjson.dumps({"open": None if v is None else [v.opened_ts, v.count, v.limit],
                                               "minute": occ.minutes.get(z), "seq": seq})))
    out += [(k, None) for k in sorted(stale - written)]
    out += [(z.encode(), None) for z in sorted(legacy)]
    return out


def load(occ: FenceOccupancy, entries: Mapping[bytes, bytes]) -> None:
    """Load a changelog's entries into a fresh stage (see the module doc)."""
    heads: dict[str, Any] = {}
    bikes: list[tuple[str, str, list[Any]]] = []
    legacy: dict[str, bytes] = {}
    for k, v in entries.items():
        if not v:
            continue
        key = orjson.loads(k) if k[:1] == b"[" else None
        if isinstance(key, list) and len(key) == 1:
            heads[key[0]] = orjson.loads(v)
        elif isinstance(key, list) and len(key) == 2:
            bikes.append((key[0], key[1], orjson.loads(v)))
        else:
            legacy[k.decode()] = v
    occ.import_zones(legacy)
    for z in legacy:  # to be written per bike by the next state write, which deletes the old key
        for b in set(occ.parked.get(z, ())) | set(occ.left.get(z, ())):
            occ.undo[(z, b)] = (None, None)
        occ.dirty.add(z)
    occ.legacy |= set(legacy)
    top = -1
    for z, head in heads.items():
        top = max(top, head["seq"])
        occ.minutes.pop(z, None)
        occ.open.pop(z, None)
        if head["minute"] is not None:
            occ.minutes[z] = head["minute"]
        if head["open"] is not None:
            t, n, cap = head["open"]
            occ.open[z] = opened("fence_over_capacity", z, t, t, zone_id=z, count=n, limit=cap)
    for z, b, (since, left, seq, prev_since, prev_left) in bikes:
        top = max(top, seq)
        if seq > heads.get(z, {}).get("seq", -1):  # its write did not finish: the value before it
            since, left = prev_since, prev_left
            occ.undo[(z, b)] = (since, left)  # written again, as it is now, by the next state write
            if since is None and left is None:
                continue  # nothing before (or only a whole-zone entry's value, loaded above)
        elif since is None and left is None:
            occ.stale.add(bike_key(z, b))  # written empty by a write whose delete did not follow
        for table, value in ((occ.parked, since), (occ.left, left)):
            if value is None:
                table.get(z, {}).pop(b, None)
            else:
                table.setdefault(z, {})[b] = value
    occ.seq = top + 1
