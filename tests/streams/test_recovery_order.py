"""After a table recovery the stream partitions resume only once Faust sought them and cleared the stream queues
(:class:`streams.app.SeekFirstRecovery`): records fetched earlier would be dropped by the clear."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

from faust.tables.recovery import Recovery
from faust.types import TP

from streams.app import HOLD, SeekFirstRecovery

STREAM = {TP("t.sensor.telemetry", 0), TP("t.sensor.telemetry", 1)}


class FakeConsumer:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.active: set[TP] = set()
        self._active_partitions = self.active

    def _get_active_partitions(self) -> set[TP]:
        return self.active

    def resume_partitions(self, tps: Any) -> None:
        self.log.append("resume_partitions")
        self.active.update(tps)


def recovery(log: list[str]) -> tuple[SeekFirstRecovery, SimpleNamespace]:
    app = SimpleNamespace(consumer=FakeConsumer(log), consumer_generation_id=3)
    r = object.__new__(SeekFirstRecovery)  # no Faust service: only the ordering logic is under test
    r.app = app  # type: ignore[assignment]
    return r, app


def faust_order(rebalance_during_seek: bool = False) -> Any:
    """What Faust 0.15 ``on_recovery_completed`` does, in its order: resume the stream partitions, seek them,
    resume flow control (clearing the stream queues), resume the consumer's flow."""

    async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
        app: Any = self.app
        app.consumer.resume_partitions(STREAM)
        assert app.consumer.active == {HOLD}  # never empty (aiokafka reads an empty set as "all partitions")
        app.consumer.log.append("seek")
        if rebalance_during_seek:
            app.consumer_generation_id += 1
        app.consumer.log.append("flow_control.resume (clears queues)")
        app.consumer.log.append("resume_flow")

    return on_recovery_completed


def test_stream_partitions_resume_after_the_seek_and_the_queue_clear() -> None:
    log: list[str] = []
    r, app = recovery(log)
    with patch.object(Recovery, "on_recovery_completed", faust_order()):
        asyncio.run(r.on_recovery_completed(3))
    assert log == ["seek", "flow_control.resume (clears queues)", "resume_flow", "resume_partitions"]
    assert app.consumer.active == STREAM  # and no HOLD
    assert "resume_partitions" not in vars(app.consumer)  # the hold is lifted


def test_a_rebalance_during_recovery_leaves_the_partitions_to_the_next_recovery() -> None:
    log: list[str] = []
    r, app = recovery(log)
    with patch.object(Recovery, "on_recovery_completed", faust_order(rebalance_during_seek=True)):
        asyncio.run(r.on_recovery_completed(3))
    assert "resume_partitions" not in log and not app.consumer.active
    assert "resume_partitions" not in vars(app.consumer)
