"""The worker's logging set-up keeps the configured level: no debug records built and dropped on the hot path."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from citystream.worker import BoundedWorker


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("level", "debug_on"), [("warning", False), ("info", False), ("debug", True)])
def test_root_logger_keeps_the_worker_level(restore_logging: None, level: str, debug_on: bool) -> None:
    app = faust.App("log-test", broker="kafka://127.0.0.1:1", autodiscover=False, web_enabled=False)
    # No stdout redirection here: its context would put sys.stdout back to sys.__stdout__ whenever the worker is
    # collected, under pytest's capture of later tests.
    worker = BoundedWorker(app, loglevel=level, quiet=True, redirect_stdouts=False)
    worker._setup_logging()
    # Faust's spinner handler would set the root logger to DEBUG at WARNING: aiokafka's per-request debug calls
    # then build records for nothing.
    assert logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG) is debug_on
    assert logging.getLogger().getEffectiveLevel() == getattr(logging, level.upper())
