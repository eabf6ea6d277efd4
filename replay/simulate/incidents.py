"""City-management cases: ``citystream.incident.events`` messages with realistic step delays.

Reports arrive as a Poisson process (``per_hour`` on average over a day; busier 08–20 local, quiet at
night) from the 15 channels of :mod:`models.incidents.channels`, with categories from the packaged
table (:mod:`models.incidents.taxonomy`): sensor alarms use the ``E21`` sensor codes and the bike
monitor the bike-parking codes. Each case walks the lifecycle of :mod:`models.incidents.lifecycle`
(report → register → dispatch → handle → feedback → verify → close; 5% rejected; 7% of verifications
fail and send the case back to handling) with lognormal delays: dispatch median 4 min (≈6% exceed the
10 min limit), handling median 30% of the category's ``handle_hours`` (≈7% exceed it). 8% of reports
are repeated 2–30 min later by another channel within 45 m (a duplicate, a new case id). Event
``ts`` is Xiamen local time with its offset (``2026-11-02T08:03:00+08:00``), whole seconds.
"""

from __future__ import annotations

__all__ = ["generate_cases", "CHANNEL_WEIGHTS"]

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import orjson
import shapely

from models.incidents.channels import CHANNELS
from models.incidents.deadlines import STEP_AFTER, DeadlinePolicy
from models.incidents.lifecycle import TRANSITIONS
from models.incidents.taxonomy import Category, CategoryTable
from replay.simulate.geography import Geography
from replay.simulate.truth import TruthLog

#: Relative share of reports per channel (12345 hotline and collector patrols dominate).
CHANNEL_WEIGHTS = {"hotline_12345": 30.0, "app_photo": 14.0, "wechat": 10.0, "collector_patrol": 20.0,
                   "video_ai": 8.0, "sensor": 3.0, "bike_monitor": 3.0, "government_web": 2.0, "media": 0.5,
                   "leader_visit": 0.5, "district_hotline": 4.0, "street_patrol": 3.0, "email": 0.5,
                   "letter": 0.5, "other": 1.0}  # fmt: skip
_XM = timezone(timedelta(hours=8))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Relative report rate per local hour (mean 1 over the day).
_HOURLY = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 1.8, 1.8, 1.6, 1.2, 1.3, 1.6, 1.7, 1.6,
                    1.5, 1.3, 1.1, 0.9, 0.7, 0.5, 0.3])  # fmt: skip
_HOURLY = _HOURLY / _HOURLY.mean()


@dataclass
class _Case:
    ts: int
    channel: str
    sub: Category
    x: float
    y: float
    events: list[tuple[str, int]] = field(default_factory=list)
    case_id: str = ""


def _local_iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(_XM).isoformat(timespec="seconds")


def _secs(rng: np.random.Generator, median_s: float, sigma: float) -> int:
    return int(max(30.0, rng.lognormal(np.log(median_s), sigma))) * 1000


def _lifecycle(rng: np.random.Generator, t: int, handle_h: float, reject_p: float) -> list[tuple[str, int]]:
    ev = [("report", t)]
    t += _secs(rng, 300, 0.6)
    if rng.random() < reject_p:
        return [*ev, ("reject", t)]
    ev.append(("register", t))
    t += _secs(rng, 240, 0.6)
    ev.append(("dispatch", t))
    for fails in range(3):
        t += _secs(rng, 0.3 * handle_h * 3600, 0.8)
        ev.append(("handle", t))
        t += _secs(rng, 600, 0.5)
        ev.append(("feedback", t))
        t += _secs(rng, 1800, 0.5)
        if fails < 2 and rng.random() < 0.07:
            ev.append(("verify_fail", t))
            continue
        ev.append(("verify", t))
        break
    t += _secs(rng, 300, 0.5)
    return [*ev, ("close", t)]


def _pick_category(rng: np.random.Generator, table: CategoryTable, channel: str) -> Category:
    subs = [c for c in table if c.level == 2]
    sensor = [c for c in subs if c.code.startswith("E21")]
    bike = [c for c in subs if c.code in ("E0514", "E0515")]
    pool = sensor if channel == "sensor" and sensor else bike if channel == "bike_monitor" and bike else None
    if pool is None:
        kind = "event" if rng.random() < 0.7 else "component"
        pool = [c for c in subs if c not in sensor and c not in bike and c.kind == kind] or subs
    return pool[int(rng.integers(len(pool)))]


def generate_cases(rng: np.random.Generator, geo: Geography, table: CategoryTable, start: int, end: int,
                   per_hour: float, truth: TruthLog) -> list[tuple[int, str, bytes]]:
    """All case events with ``start <= ts < end`` as ``(ts_ms, case_id, value)`` in ts order.

    Example
    -------
    >>> from models.incidents.taxonomy import load_categories
    >>> from replay.simulate.geography import build_geography
    >>> rng = np.random.default_rng(4)
    >>> ev = generate_cases(rng, build_geography(rng, n_fences=40, n_zones=2), load_categories(),
    ...                     0, 2 * 3_600_000, 30.0, TruthLog())
    >>> orjson.loads(ev[0][2])["transition"], all(a[0] <= b[0] for a, b in zip(ev, ev[1:]))
    ('report', True)
    """
    names, w = list(CHANNEL_WEIGHTS), np.array(list(CHANNEL_WEIGHTS.values()))
    peak = per_hour * _HOURLY.max() / 3_600_000
    cases: list[_Case] = []
    t = float(start)
    while per_hour > 0:
        t += rng.exponential(1.0 / peak)
        if t >= end:
            break
        if rng.random() * _HOURLY.max() > _HOURLY[int(((t / 3_600_000) + 8) % 24)]:
            continue
        ch = names[int(rng.choice(len(names), p=w / w.sum()))]
        sub = _pick_category(rng, table, ch)
        c = geo.fences.centroid[rng.integers(len(geo.fences))] + rng.normal(0, 30, 2)
        if not shapely.contains_xy(geo.fra, c[0], c[1]):
            c = geo.fences.centroid[rng.integers(len(geo.fences))]
        ts = int(t) // 1000 * 1000
        cases.append(_Case(ts, ch, sub, float(c[0]), float(c[1]),
                           _lifecycle(rng, ts, table.handle_hours(sub.parent_code, sub.code), 0.05)))
    groups: list[list[_Case]] = []
    for orig in list(cases):
        if rng.random() >= 0.08:
            continue
        group = [orig]
        for _ in range(1 if rng.random() < 0.8 else 2):
            ts = orig.ts + int(rng.uniform(2, 30) * 60) * 1000
            r, a = rng.uniform(5, 45), rng.uniform(0, 2 * np.pi)
            ch = names[int(rng.choice(len(names), p=w / w.sum()))]
            hh = table.handle_hours(orig.sub.parent_code, orig.sub.code)
            dup = _Case(ts, ch, orig.sub, orig.x + r * np.cos(a), orig.y + r * np.sin(a),
                        _lifecycle(rng, ts, hh, 0.6))
            if ts < end:
                group.append(dup)
                cases.append(dup)
        if len(group) > 1:
            groups.append(group)
    return _emit(rng, geo, table, cases, groups, end, truth)


def _emit(rng: np.random.Generator, geo: Geography, table: CategoryTable, cases: list[_Case],
          groups: list[list[_Case]], end: int, truth: TruthLog) -> list[tuple[int, str, bytes]]:
    per_day: dict[str, int] = {}
    for c in sorted(cases, key=lambda c: c.ts):  # stable: ties keep creation order
        day = _local_iso(c.ts)[:10].replace("-", "")
        per_day[day] = per_day.get(day, 0) + 1
        c.case_id = f"XM{day}-{per_day[day]:06d}"
    policy = DeadlinePolicy(categories=table)
    out: list[tuple[int, int, str, bytes]] = []
    for n, c in enumerate(cases):
        lon, lat = geo.proj.to_lonlat(np.array(c.x), np.array(c.y))
        grid = geo.grid_of(np.array([c.x]), np.array([c.y]))[0]
        report = {"case_id": c.case_id, "ts": _local_iso(c.ts), "transition": "report", "channel": c.channel,
                  "category": c.sub.parent_code, "subcategory": c.sub.code, "lat": round(float(lat), 6),
                  "lon": round(float(lon), 6),
                  "text": f"{CHANNELS[c.channel].name_zh}：{grid or '厦门岛'}网格附近{c.sub.name_zh}"}
        if CHANNELS[c.channel].citizen:
            report["reporter_phone"] = f"1{'35789'[int(rng.integers(5))]}{int(rng.integers(10**9)):09d}"
        for k, (tr, ts) in enumerate(c.events):
            if ts >= end:
                break
            value = report if tr == "report" else {"case_id": c.case_id, "ts": _local_iso(ts), "transition": tr}
            out.append((ts, n * 100 + k, c.case_id, orjson.dumps(value)))
        _deadlines(c, policy, end, truth)
    for g in groups:
        truth.add("duplicate_group", case_ids=[c.case_id for c in g], category=g[0].sub.parent_code,
                  subcategory=g[0].sub.code, first_ts=g[0].ts)
    out.sort(key=lambda r: r[:2])
    return [(ts, key, value) for ts, _, key, value in out]


def _deadlines(c: _Case, policy: DeadlinePolicy, end: int, truth: TruthLog) -> None:
    """Record every step whose deadline passed inside the recording without its completing event."""
    for k, (tr, ts) in enumerate(c.events):
        step = STEP_AFTER.get(TRANSITIONS[tr][1])
        if step is None or ts >= end:
            continue
        deadline = ts + policy.limit_ms(step, c.sub.parent_code, c.sub.code)
        done = c.events[k + 1][1] if k + 1 < len(c.events) and c.events[k + 1][1] < end else None
        if deadline < end and (done is None or done > deadline):
            truth.add("deadline_breach", case_id=c.case_id, step=step, clock_start_ts=ts, deadline_ts=deadline,
                      done_ts=done)
