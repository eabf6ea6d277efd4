"""A first stage outside Faust's per-message path: an aiokafka consumer reading an input topic in big batches.

Faust spends ~100-400 us of Python per message (fetcher, conductor, stream iterator, acks) before an agent
sees it; on a feed of one small record per message that, not the logic, is the ceiling. A :class:`BatchIngest`
is a task of the Faust app (started after table recovery, cancelled on shutdown) that runs a plain
``AIOKafkaConsumer`` in its own consumer group, ``<app_id>-<role>-ingest``: the standard group protocol, so
scaling out is still more workers on more partitions. Per batch it hands the records to a handler that
sends its outputs and waits for delivery, THEN commits the batch's offsets explicitly (at least once; the
stages downstream are idempotent). A rebalance waits for the batch in flight (the revoke callback takes the
same lock), so nothing is committed past what was delivered, and nothing delivered is left uncommitted by
the worker that keeps running.

The records (``streams/ingest_batch.py``): ``getmany``'s ``ConsumerRecord``s are turned into plain ``(offset, timestamp, key, value)`` tuples
at once, so the batch the handler holds (a :class:`Batch`) is made of tuples of bytes and ints, which drop out
of the garbage collector's tracking at its first pass, rather than GC-tracked dataclasses that make every full
collection walk them. (Making aiokafka's fetcher yield such tuples itself saves ~1 us more per record, but only
by replacing private aiokafka classes: not done.)

Event-time alignment: a ``getmany`` can bring a long stretch of one partition and a short one of another (the
fetch sizes, a partition that lagged, a rebalance), so a stage downstream that orders fixes by event time per
target partition would see one source far behind the other, beyond the allowed lateness, depending on timing.
The ingest therefore holds fetched records back (:func:`release`): it hands over only records up to the
oldest "newest timestamp" among the partitions it holds records of, and waits (at most
``ALIGN_WAIT_S``) for partitions known to have unread records it has not fetched yet. A partition that is
read to its end does not hold the others back (a live feed never waits for a silent source). What is held
is uncommitted; a partition holding more than ``max_records`` is paused until the others catch up.

Tansu quirks: no idempotent producer (outputs go through Faust's plain producer); ListOffsets(latest)
under-reports, so the lag uses the Fetch high watermark (``highwater``); JoinGroup answers after about half
the session timeout, so the group uses the settings' short session timeout like Faust's.
"""

from __future__ import annotations

__all__ = ["ALIGN_WAIT_S", "Batch", "BatchIngest", "RecordSource", "ingests", "release"]

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition
from faust.types import TP
from mode import Service

from streams.app import Pipeline
from streams.clock import ack_clock
from streams.ingest_batch import ALIGN_WAIT_S, Batch, Record, RecordSource, as_records, release

log = logging.getLogger(__name__)

Handler = Callable[[Batch], Awaitable[None]]


def ingests(pipe: Pipeline) -> list[BatchIngest]:
    """The ingest stages of ``pipe`` (for the monitor and the demo's drain check)."""
    return pipe.state.setdefault("ingests", [])


class _Listener(ConsumerRebalanceListener):
    def __init__(self, ingest: BatchIngest) -> None:
        self.ingest = ingest

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.ingest.lock:  # the batch in flight is delivered and committed first
            for tp in revoked:
                self.ingest.committed.pop(TP(tp.topic, tp.partition), None)
                self.ingest.read.pop(TP(tp.topic, tp.partition), None)
                self.ingest.pending.pop(tp, None)  # uncommitted: the next owner (maybe this worker) reads them again
            self.ingest.announced.clear()  # what the stages behind heard may have changed meanwhile: tell them again

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.ingest.announced.clear()  # committed positions are looked up lazily by the loop


class _EarlyStart(Service):
    """Joins the ingest's consumer group as the app starts (a dependency of the app, started before
    Faust's consumer), rather than when the app's tasks start after table recovery."""

    def __init__(self, ingest: BatchIngest) -> None:
        super().__init__()
        self.ingest = ingest

    async def on_start(self) -> None:
        await self.ingest.start()


class BatchIngest:
    """Consume ``short`` (a topic's short name) in batches of up to ``max_records`` into ``handle``.

    ``handle(batch)`` (a :class:`Batch`) must deliver everything it sends before returning; it is retried (from
    the last committed offsets) when it raises, so it must be safe to repeat. ``throttle()``, if given, is
    awaited before each fetch (outside the batch lock). ``tick()``, if given, is awaited (under the batch lock)
    when nothing was handed over for ``tick_s`` seconds, and again every ``tick_s`` while that lasts: a stage
    behind whose clock only moves when a message arrives gets one. Lag and progress are exposed for the
    monitor (:meth:`lags`, :attr:`read`, :attr:`last_done`).
    """

    def __init__(self, pipe: Pipeline, short: str, handle: Handler, *, max_records: int,
                 throttle: Callable[[], Awaitable[None]] | None = None,
                 tick: Callable[[], Awaitable[None]] | None = None, tick_s: float = 60.0) -> None:
        s = pipe.settings
        self.pipe = pipe
        self.topic = s.topic(short)
        self.group = f"{s.app_id}-{pipe.role.value}-ingest"
        self.handle = handle
        self.max_records = max_records
        self.throttle = throttle  # awaited before each fetch: backpressure from the stages behind
        self.tick, self.tick_s = tick, tick_s
        self._last_sent = time.monotonic()  # the last batch handed over, or tick
        self.lock = asyncio.Lock()
        self._starting = asyncio.Lock()
        self.committed: dict[TP, int] = {}  # next offset to read, as committed by this worker
        self.read: dict[TP, int] = {}  # last offset handed to the handler
        self.last_done = time.monotonic()
        self.consumer: AIOKafkaConsumer | None = None
        self.pending: dict[TopicPartition, list[Record]] = {}  # fetched, held back (see release())
        self._waiting_since: float | None = None  # when a batch started waiting for an unfetched partition
        self._idle: dict[int, bool] = {}  # per assigned partition, after the last release: read to its end
        #: Per partition, the ``idle`` flag the handler was last given since the assignment (see :meth:`_unannounced`).
        self.announced: dict[int, bool] = {}
        ingests(pipe).append(self)
        pipe.app.add_dependency(_EarlyStart(self))
        pipe.app.task(self.run)

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.pipe.settings
        session_ms = int(s.session_timeout_s * 1000)
        return AIOKafkaConsumer(
            bootstrap_servers=s.broker_bootstrap, group_id=self.group, client_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=s.fetch_max_wait_ms,
            session_timeout_ms=session_ms, heartbeat_interval_ms=max(200, session_ms // 6),
            rebalance_timeout_ms=max(session_ms, 10_000),
            request_timeout_ms=int(max(s.request_timeout_s, s.session_timeout_s) * 1000) + 5000,
                    )

    def lags(self) -> dict[TP, int]:
        """Fetch high watermark minus committed offset, per assigned partition fetched at least once."""
        c = self.consumer
        if c is None:
            return {}
        out = {}
        assigned = c.assignment()
        for tp, committed in list(self.committed.items()):
            partition = TopicPartition(tp.topic, tp.partition)
            if partition not in assigned:  # revoked by a rebalance the loop has not seen yet
                continue
            try:
                high = c.highwater(partition)
            except IllegalStateError:  # revoked meanwhile
                continue
            if high is not None:
                out[tp] = max(0, high - committed)
        return out

    def read_to_end(self) -> bool:
        """True when every assigned partition is committed or read up to its high watermark."""
        c = self.consumer
        if c is None:
            return False
        for tp in c.assignment():
            key = TP(tp.topic, tp.partition)
            high = c.highwater(tp)
            if high is None or key not in self.committed:
                return False
            if self.committed[key] < high and self.read.get(key, -1) < high - 1:
                return False
        return True

    async def start(self) -> None:
        """Create the consumer and join the group (idempotent). Called when the app starts, so the group join
        (about half the session timeout on Tansu) overlaps Faust's own join and table recovery."""
        async with self._starting:
            if self.consumer is None:
                consumer = self._consumer()
                consumer.subscribe([self.topic], listener=_Listener(self))
                await consumer.start()
                self.consumer = consumer

    async def run(self) -> None:
        """The loop (an app task, started once the app is up): until cancelled at shutdown."""
        await self.start()
        consumer = self.consumer
        assert consumer is not None
        try:
            while True:
                if self.throttle is not None:
                    await self.throttle()
                fetched = as_records(await consumer.getmany(timeout_ms=200, max_records=self.max_records))
                await self._track(consumer, fetched)  # not under the lock: position() may wait on a rebalance
                async with self.lock:
                    batch = self._release(consumer, fetched)
                    if batch or self._unannounced(consumer):
                        await self._process(consumer, batch)
                        self._last_sent = time.monotonic()
                    elif self.tick is not None and time.monotonic() - self._last_sent >= self.tick_s:
                        self._last_sent = time.monotonic()
                        try:
                            await self.tick()
                        except Exception as exc:  # noqa: BLE001 - e.g. the broker is away: the next tick tries again
                            log.warning("ingest tick of %s failed: %r", self.topic, exc)
        finally:
            try:
                await asyncio.wait_for(consumer.stop(), 3.0)  # bounded: the worker's shutdown is
            except (TimeoutError, KafkaError) as exc:
                log.warning("ingest consumer of %s did not stop cleanly: %r", self.topic, exc)

    async def _track(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Record]]) -> None:
        """Track newly assigned partitions from their committed (or reset) position; forget revoked ones."""
        assigned = {TP(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        for key in [k for k in self.committed if k not in assigned]:
            del self.committed[key]
            self.read.pop(key, None)
        for key, tp in assigned.items():
            if key in self.committed:
                continue
            # Nothing of this assignment was handled yet: its first record is at the committed position.
            try:
                position = batch[tp][0][0] if batch.get(tp) else await asyncio.wait_for(consumer.position(tp), 2.0)
            except (TimeoutError, IllegalStateError):  # revoked meanwhile, or not known yet: next time
                continue
            if tp in consumer.assignment():  # not revoked while position() waited
                self.committed[key] = position

    def _release(self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[Record]]
                 ) -> dict[TopicPartition, list[Record]]:
        """Add ``fetched`` to the held records and take what is due (:func:`release`); pause partitions holding
        more than ``max_records``, resume the others."""
        assigned = consumer.assignment()
        for tp, recs in fetched.items():
            if tp in assigned:
                self.pending.setdefault(tp, []).extend(recs)
        for tp in [tp for tp in self.pending if tp not in assigned]:
            del self.pending[tp]
        if not any(self.pending.values()):
            self._waiting_since = None
            return {}
        unfetched = [tp for tp in assigned if not self.pending.get(tp) and self._has_unread(consumer, tp)]
        now = time.monotonic()
        if unfetched:
            self._waiting_since = self._waiting_since or now
            if now - self._waiting_since < ALIGN_WAIT_S:
                self._pace(consumer, assigned)
                return {}
        self._waiting_since = None
        out, _ = release(self.pending)
        self._pace(consumer, assigned)
        self._idle = self._read_to_end(consumer, assigned, out)
        return out

    def _read_to_end(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition],
                     handing: dict[TopicPartition, list[Record]]) -> dict[int, bool]:
        """Per assigned partition, whether it is read to its end once ``handing`` is handed over: nothing held
        back, nothing unread (the ``idle`` flags of a :class:`Batch`)."""
        return {tp.partition: not self.pending.get(tp) and not self._has_unread(consumer, tp, handing.get(tp))
                for tp in assigned}

    def _unannounced(self, consumer: AIOKafkaConsumer) -> bool:
        """Nothing to hand over, but a partition is read to its end and the handler was not told so since the
        assignment: an empty partition, or one a previous owner read to its end. Sets the flags for a batch without
        records that tells it (the stages behind would otherwise take the partition for one not read yet, and wait
        for it until it counts as silent)."""
        if any(self.pending.values()):
            return False
        idle = self._read_to_end(consumer, consumer.assignment(), {})
        if all(self.announced.get(p, False) or not v for p, v in idle.items()):
            return False
        self._idle = idle
        return True

    def _has_unread(self, consumer: AIOKafkaConsumer, tp: TopicPartition, handing: list[Record] | None = None) -> bool:
        """The partition has records this worker has not fetched (or its end is not known yet); ``handing``:
        its records being handed over now."""
        try:
            high = consumer.highwater(tp)
        except IllegalStateError:
            return False
        if high is None:
            return True
        key = TP(tp.topic, tp.partition)
        if handing:
            return handing[-1][0] + 1 < high
        next_offset = self.read[key] + 1 if key in self.read else self.committed.get(key)
        return next_offset is None or next_offset < high

    def _pace(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        full = {tp for tp in assigned if len(self.pending.get(tp, ())) >= self.max_records}
        paused = consumer.paused()
        if full - paused:
            consumer.pause(*(full - paused))
        if (paused & assigned) - full:
            consumer.resume(*((paused & assigned) - full))

    async def _process(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Record]]) -> None:
        with ack_clock(self.pipe).working():  # a big batch is work under way, not idleness
            await self._handle(consumer, batch)

    async def _handle(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Record]]) -> None:
        # Partitions interleaved by message timestamp (the event time, as replay and operators set it), each
        # partition's own order kept: one getmany can hold a long stretch of one partition and a short one of
        # another, and a bike whose fixes arrive on two partitions (single fixes and its operator's batches)
        # would otherwise see its older fixes after its newer ones, beyond the allowed lateness.
        records = Batch(batch, self._idle)
        try:
            await self.handle(records)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - e.g. the broker is away: re-read the batch, never skip it
            log.exception("ingest of %s failed on a batch of %d records; re-reading it in 1 s", self.topic, len(records))
            for tp, recs in batch.items():
                consumer.seek(tp, recs[0][0])
                self.pending.pop(tp, None)  # read again after the batch
            await asyncio.sleep(1.0)
            return
        self.announced = dict(records.idle)
        offsets = {tp: recs[-1][0] + 1 for tp, recs in batch.items()}
        if not offsets:  # marks only (:meth:`_unannounced`): nothing to commit
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:  # revoked by a rebalance: the next owner re-reads
            log.warning("ingest commit of %s failed (%r); the records will be delivered again", self.topic, exc)
            return
        for tp, off in offsets.items():
            key = TP(tp.topic, tp.partition)
            self.committed[key] = off
            self.read[key] = off - 1
        self.last_done = time.monotonic()
