"""Settings that reach the Faust app and its producer (no broker needed: the app is only built)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from citystream.config import Role, Settings
from streams.app import create_pipeline


def test_producer_batch_bytes_reaches_the_aiokafka_producer(tmp_path: Path) -> None:
    default = Settings(data_dir=tmp_path)
    assert default.producer_batch_bytes == 262_144  # not Faust's 16 KiB
    pipe = create_pipeline(Settings(data_dir=tmp_path, producer_batch_bytes=131_072), Role.streams)
    assert pipe.app.conf.producer_max_batch_size == 131_072
    assert pipe.app.producer.max_batch_size == 131_072  # what Faust hands aiokafka as max_batch_size


@pytest.mark.parametrize("size", [1024, 2_000_000])
def test_producer_batch_bytes_outside_the_request_size_is_refused(tmp_path: Path, size: int) -> None:
    with pytest.raises(ValidationError, match="producer_batch_bytes"):
        Settings(data_dir=tmp_path, producer_batch_bytes=size)
