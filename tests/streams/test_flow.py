"""Backpressure from the bike supervisor to the ingest (:class:`streams.flow.FixFlow`)."""

from __future__ import annotations

import asyncio
import time

from streams.flow import FixFlow


def test_the_sender_waits_until_the_supervisor_catches_up() -> None:
    async def run() -> tuple[float, int]:
        flow = FixFlow(limit=1000, stall_s=5.0)
        flow.sent(0, 3000)

        async def supervisor() -> None:
            for _ in range(10):
                await asyncio.sleep(0.02)
                flow.done(0, 250)

        task = asyncio.create_task(supervisor())
        t = time.monotonic()
        await flow.wait(lambda: {0})
        waited = time.monotonic() - t
        backlog = flow.backlog({0})
        await task
        return waited, backlog

    waited, backlog = asyncio.run(run())
    assert backlog <= 1000  # released only once under the limit
    assert 0.1 <= waited < 2.0  # after 8 of the supervisor's steps, not at once and not at the stall bound


def test_a_stalled_supervisor_or_another_workers_partition_never_blocks_the_sender() -> None:
    async def run() -> tuple[float, float]:
        flow = FixFlow(limit=10, stall_s=0.4)
        flow.sent(1, 500)
        t = time.monotonic()
        await flow.wait(lambda: {0})  # partition 1 is not this worker's: no wait
        free = time.monotonic() - t
        flow.sent(0, 500)
        t = time.monotonic()
        await flow.wait(lambda: {0})  # nothing ever finishes: gives up after about stall_s / 2
        return free, time.monotonic() - t

    free, stalled = asyncio.run(run())
    assert free < 0.05
    assert 0.15 <= stalled < 1.0


def test_a_revoked_partition_starts_afresh() -> None:
    flow = FixFlow(limit=10)
    flow.sent(2, 100)
    assert flow.over({2})
    flow.forget([2])
    flow.done(2, 40)  # the new owner's progress on what was there before: never a negative backlog
    assert flow.backlog({2}) == 0 and not flow.over({2})
