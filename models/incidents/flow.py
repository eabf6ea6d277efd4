"""One partition of the case stream: messages in; case upserts, transitions, breaches and rejects out.

:class:`CaseFlow` is everything the ``track_incidents`` agent does, without Kafka: it decodes and
validates messages (:mod:`.events`: phone hashed and text scrubbed before anything is kept),
attributes reports to district/street/community/grid (:mod:`.attribution`), runs them through
:class:`~models.incidents.processor.IncidentProcessor` (reorder within the allowed lateness, the
lifecycle, deadlines on the partition's event-time watermark) and turns the results into output rows
(:mod:`.rows`). Applied reports are handed on to duplicate linking (:mod:`.linking`), keyed by what
two duplicates share. State is saved per case (:meth:`CaseFlow.snapshot`) and put back after a
restart (:meth:`CaseFlow.restore`); the outputs depend only on the partition's message order.
"""

from __future__ import annotations

__all__ = ["Message", "Reject", "Outbox", "CaseFlow"]

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson

from models.incidents.attribution import Attributor
from models.incidents.deadline_tracker import Breach
from models.incidents.deadlines import DeadlinePolicy
from models.incidents.events import Heartbeat, Invalid, decode_event, sanitize_payload
from models.incidents.lifecycle import CaseState
from models.incidents.processor import Applied, IncidentProcessor
from models.incidents.reorder import Late
from models.incidents.rows import breach_row, case_row, info_of, match_key, transition_row
from models.incidents.taxonomy import CategoryTable, default_categories

_OFFSET = "_o"  # source offset carried by a held event, for a dead letter at release


class Message(NamedTuple):
    """One input message: its bytes, key (decoded), offset in the partition, and the newest event time it may
    carry (its timestamp plus the allowed clock skew; None: no limit)."""

    value: bytes | None
    key: str | None
    offset: int
    latest: int | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """A message to dead-letter: where it came from, why, and its payload made safe to store."""

    offset: int
    key: str | None
    reason: str
    detail: str
    payload: bytes
    ts_ms: int | None = None


@dataclass(slots=True)
class Outbox:
    """What a :class:`CaseFlow` produced since the last :meth:`CaseFlow.drain`.

    ``updates``: ``(case_id, event ts, row)`` for ``incident.updates``; ``reports``: ``(match key,
    ts, report)`` for duplicate linking; ``dirty``: cases whose saved state changed; ``watermark``: the
    new watermark to save, and ``frontier``: the new release frontier (every report with an earlier ts
    has been handed on) to pass on to linking — each only if it moved.
    """

    updates: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    reports: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    dirty: set[str] = field(default_factory=set)
    watermark: int | None = None
    frontier: int | None = None


class CaseFlow:
    """The case stream of one partition.

    Parameters
    ----------
    partition
        The input partition this flow serves (saved with every snapshot).
    attributor
        Finds district/street/community/grid of a report.
    phone_key
        Secret key of the reporter-phone HMAC.
    categories, policy
        Category table (``None``: the packaged one) and deadline policy (``None``: defaults).
    lateness_ms, retention_ms
        Reorder window, and how long closed/rejected cases are kept (see ``IncidentProcessor``).
    match_on
        What duplicate reports share: ``"subcategory"`` or ``"category"``.

    Example
    -------
    >>> f = CaseFlow(0, Attributor(), b"key", lateness_ms=0)
    >>> t0 = 1795244400000
    >>> rep = {"case_id": "A", "ts": t0, "transition": "report", "channel": "wechat", "category": "E01",
    ...        "lat": 24.48, "lon": 118.09, "reporter_phone": "13812345678"}
    >>> f.push([Message(orjson.dumps(rep), "A", 0),
    ...         Message(orjson.dumps({"case_id": "A", "ts": t0 + 60_000, "transition": "close"}), "A", 1),
    ...         Message(b'{"heartbeat": true, "ts": %d}' % (t0 + 31 * 60_000), None, 2)])
    >>> out = f.drain()
    >>> [(r["kind"], r.get("transition") or r.get("step")) for _, _, r in out.updates]
    [('transition', 'report'), ('breach', 'register'), ('case', 'register')]
    >>> [(r.reason, r.detail) for r in out.rejects]
    [('illegal_transition', 'illegal transition report→close for case A in state reported (allowed: register, reject, resolve)')]
    >>> out.updates[-1][2]["reporter"].startswith("h:"), f.processor.states["A"].status
    (True, 'reported')
    """

    def __init__(
        self,
        partition: int,
        attributor: Attributor,
        phone_key: bytes,
        categories: CategoryTable | None = None,
        policy: DeadlinePolicy | None = None,
        lateness_ms: int = 300_000,
        retention_ms: int = 24 * 3_600_000,
        match_on: str = "subcategory",
    ) -> None:
        self.partition = partition
        self.attributor = attributor
        self.phone_key = phone_key
        self.categories = categories if categories is not None else default_categories()
        self.policy = policy or DeadlinePolicy(categories=self.categories)
        self.match_on = match_on
        self.processor = IncidentProcessor(lateness_ms, self.policy, None, retention_ms)
        self.info: dict[str, dict[str, Any]] = {}
        self.held: dict[str, list[dict[str, Any]]] = {}
        self.out = Outbox()
        self._saved_watermark = self.processor.buffer.watermark

    # -- input ---------------------------------------------------------------------------------
    def push(self, messages: Sequence[Message]) -> None:
        """Take messages in partition order; results accumulate until :meth:`drain`."""
        decoded = [decode_event(m.value, m.key, self.categories, self.phone_key, m.latest) for m in messages]
        reports = [d for d in decoded if isinstance(d, dict) and d["transition"] == "report"]
        if reports:
            places = self.attributor.places(np.array([r["lon"] for r in reports]),
                                            np.array([r["lat"] for r in reports]))  # fmt: skip
            for r, place in zip(reports, places, strict=True):
                r.update(asdict(place))
        for m, d in zip(messages, decoded, strict=True):
            if isinstance(d, Invalid):
                self._reject(m.offset, m.key, d.reason, d.detail, sanitize_payload(m.value, self.phone_key))
            elif isinstance(d, Heartbeat):
                self.heartbeat(d.ts)
            else:
                self._push_event({**d, _OFFSET: m.offset})

    def heartbeat(self, ts_ms: int) -> None:
        """Nothing older than ``ts_ms`` will come: release and fire everything before it."""
        self.out.counts["heartbeat"] += 1
        self._handle(self.processor.advance_to(ts_ms + self.processor.allowed_lateness_ms))

    def drain(self) -> Outbox:
        """Everything produced since the last call; the caller sends it, then saves :attr:`Outbox.dirty`.

        Of a case's ``case`` rows only the newest is kept: it supersedes the others (higher version).
        """
        out, self.out = self.out, Outbox()
        seen: set[str] = set()
        kept = []
        for item in reversed(out.updates):
            if item[2]["kind"] == "case":
                if item[0] in seen:
                    continue
                seen.add(item[0])
            kept.append(item)
        out.updates = kept[::-1]
        wm = self.processor.buffer.watermark
        if wm != self._saved_watermark:
            out.watermark = self._saved_watermark = wm
            out.frontier = self.processor.buffer.frontier
        return out

    def _push_event(self, e: dict[str, Any]) -> None:
        cid, key = e["case_id"], (e["transition"], e["ts"])
        state = self.processor.states.get(cid)
        if (state is not None and key in state.history) or any(
            (h["transition"], h["ts"]) == key for h in self.held.get(cid, ())
        ):
            self.out.counts["duplicate"] += 1  # a re-delivered event: already applied or held
            return
        frontier = self.processor.buffer.frontier
        if e["transition"] == "report" and state is None and cid not in self.held and frontier is not None \
                and e["ts"] < frontier:
            # A new case reported behind the frontier (a detector's feed running behind the case system's):
            # it has no other event to disorder, so apply it now rather than lose it as late.
            self.out.counts["late_report"] += 1
            self.held[cid] = [e]
            wm = self.processor.buffer.watermark
            assert wm is not None
            self._handle(self.processor.apply_now(e) + self.processor.advance_to(wm))  # overdue steps fire now
            return
        self.held.setdefault(cid, []).append(e)
        self.out.dirty.add(cid)
        self._handle(self.processor.push(e))

    # -- results -------------------------------------------------------------------------------
    def _handle(self, results: list[Applied | Breach | Late]) -> None:
        for r in results:
            if isinstance(r, Breach):
                self._breach(r)
            elif isinstance(r, Late):
                self._unhold(r.event)
                self.out.counts["late"] += 1
                self._reject_event(r.event, "late", r.reason)
            else:
                self._applied(r)
        for cid in self.processor.evicted:
            self.info.pop(cid, None)
            self.out.dirty.add(cid)
            self.out.counts["evicted"] += 1
        self.processor.evicted.clear()

    def _applied(self, a: Applied) -> None:
        e = a.event
        self._unhold(e)
        if not a.outcome.ok or a.state is None:
            self.out.counts[a.outcome.kind] += 1
            if a.outcome.kind not in ("duplicate", "moot"):
                reason = "illegal_transition" if a.outcome.kind == "illegal" else "invalid_event"
                self._reject_event(e, reason, a.outcome.reason)
            return
        state, cid = a.state, a.state.case_id
        self.out.counts["applied"] += 1
        if a.previous is None:
            self.info[cid] = info_of(e)
            key = match_key(e, self.match_on)
            if key is not None:
                report = {k: e.get(k) for k in ("case_id", "ts", "category", "subcategory", "lat", "lon")}
                self.out.reports.append((key, e["ts"], report))
        info = self.info[cid]
        self.out.updates.append((cid, e["ts"], transition_row(state, a.previous, info, self.policy)))
        self.out.updates.append((cid, e["ts"], case_row(state, info, self.policy)))
        self.out.dirty.add(cid)

    def _breach(self, b: Breach) -> None:
        state, info = self.processor.states[b.case_id], self.info[b.case_id]
        info["breaches"] += 1
        self.out.counts["breach"] += 1
        self.out.updates.append((b.case_id, b.breach_ts, breach_row(b, info)))
        self.out.updates.append((b.case_id, b.breach_ts, case_row(state, info, self.policy)))
        self.out.dirty.add(b.case_id)

    def _unhold(self, e: dict[str, Any]) -> None:
        held = self.held.get(e["case_id"], [])
        for i, h in enumerate(held):
            if h is e:
                del held[i]
                break
        if not held:
            self.held.pop(e["case_id"], None)
        self.out.dirty.add(e["case_id"])

    def _reject_event(self, e: dict[str, Any], reason: str, detail: str) -> None:
        payload = orjson.dumps({k: v for k, v in e.items() if k != _OFFSET})
        self._reject(int(e.get(_OFFSET, -1)), e["case_id"], reason, detail, payload, e["ts"])

    def _reject(self, offset: int, key: str | None, reason: str, detail: str, payload: bytes,
                ts: int | None = None) -> None:  # fmt: skip
        self.out.rejects.append(Reject(offset, key, reason, detail, payload, ts))

    # -- state ---------------------------------------------------------------------------------
    def snapshot(self, case_id: str) -> bytes | None:
        """The saved form of one case (state, attribution, held events), or None once it is gone."""
        state = self.processor.states.get(case_id)
        held = self.held.get(case_id)
        if state is None and not held:
            return None
        return orjson.dumps({
            "p": self.partition, "s": asdict(state) if state is not None else None,
            "i": self.info.get(case_id), "h": held or [], "f": self.processor.tracker.fired_step(case_id),
        })

    def restore(self, data: bytes) -> bool:
        """Put back a case saved by :meth:`snapshot`; False (and nothing done) if it belongs to
        another partition. Call :meth:`restore_watermark` first."""
        d = orjson.loads(data)
        if d["p"] != self.partition:
            return False
        s = d["s"]
        if s is not None:
            state = CaseState(**{**s, "history": tuple((t, ts) for t, ts in s["history"])})
            fired = d["f"]
            self.processor.restore(state, (fired[0], fired[1]) if fired else None)
            if d["i"] is not None:
                self.info[state.case_id] = d["i"]
        for e in d["h"]:
            self.held.setdefault(e["case_id"], []).append(e)
            self.processor.buffer.hold(e)
        return True

    def restore_watermark(self, watermark_ms: int) -> None:
        """Put back the partition's watermark (before :meth:`restore`)."""
        self.processor.restore_watermark(watermark_ms)
        self._saved_watermark = self.processor.buffer.watermark

    def __repr__(self) -> str:
        return (f"CaseFlow(partition={self.partition}, cases={len(self.processor.states)}, "
                f"held={sum(map(len, self.held.values()))})")  # fmt: skip
