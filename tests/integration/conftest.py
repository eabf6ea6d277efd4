"""Integration fixtures: one embedded Tansu broker per test session, an isolated pipeline per test.

Point the same tests at other services by setting CITYSTREAM_TEST_BROKER (kafka://host:port) — the
docker-compose Kafka, for example; ClickHouse stays embedded (chDB) so the tests can read it back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from citystream.embedded import TansuBroker
from tests.integration.harness import Stack


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    external = os.environ.get("CITYSTREAM_TEST_BROKER")
    if external:
        yield external
        return
    with TansuBroker() as broker:
        yield broker.url


@pytest.fixture
def stack(broker_url: str, tmp_path: Path) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    s = Stack(broker_url=broker_url, bootstrap=broker_url.removeprefix("kafka://"), tmp=tmp_path, prefix=prefix)
    yield s
    s.close()
