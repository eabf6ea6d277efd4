"""A worker that cannot start says why in one line, naming the setting to fix, and exits 1 (so does any command
that cannot reach Kafka): no traceback to read through, and no ClickHouse password in the message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka.errors import KafkaTimeoutError

from citystream.config import Role, Settings
from citystream.embedded import free_port

pytestmark = pytest.mark.integration


def start(tmp_path: Path, role: str, **env: str) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-m", "citystream.cli", "worker", "--role", role],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "1000", "CITYSTREAM_METRICS_PORT": "0", "CITYSTREAM_DATA_DIR": str(tmp_path),
             **env})
    return out.returncode, out.stdout + out.stderr


def test_a_missing_geography_stops_the_worker_naming_the_file(broker_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-geography.geojson"
    code, text = start(tmp_path, "streams", CITYSTREAM_BROKER=broker_url, CITYSTREAM_GEOGRAPHY=str(missing))
    assert code == 1, text
    assert "worker did not start: cannot build the pipeline" in text and str(missing) in text, text
    assert "CITYSTREAM_GEOGRAPHY" in text and "Traceback" not in text, text


def test_an_unreachable_clickhouse_is_named_without_its_password(broker_url: str, tmp_path: Path) -> None:
    dsn = f"http://citystream:s3cret-pw@127.0.0.1:{free_port()}/citystream"  # nothing listens there
    code, text = start(tmp_path, "sinks", CITYSTREAM_BROKER=broker_url, CITYSTREAM_CLICKHOUSE_DSN=dsn)
    assert code == 1, text
    assert "worker did not start: cannot open ClickHouse at http://citystream:***@127.0.0.1:" in text, text
    assert "CITYSTREAM_CLICKHOUSE_DSN" in text and "s3cret-pw" not in text and "Traceback" not in text, text


def test_an_unreachable_broker_is_a_startup_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka-python gives up on a bootstrap after ~30 s; the error it raises is what ``build`` turns into words."""
    import citystream.worker as worker

    def unreachable(settings: Settings) -> list[str]:
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr(worker, "ensure_topics", unreachable)
    settings = Settings(broker="kafka://127.0.0.1:1", data_dir=tmp_path)
    with pytest.raises(worker.StartupError, match=r"on the Kafka broker at 127\.0\.0\.1:1 \(CITYSTREAM_BROKER;") as e:
        worker.build(settings, Role.streams)
    assert str(e.value).endswith("): KafkaTimeoutError: Unable to bootstrap from 127.0.0.1:1"), e.value  # named once


def test_any_command_that_cannot_reach_kafka_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``replay``, ``record`` and the rest reach Kafka through kafka-python, which gives up after ~30 s: the
    entry point prints what failed and where to look, and exits 1 (not a traceback)."""
    import citystream.cli as cli

    def unreachable() -> None:
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr(cli, "app", unreachable)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    text = " ".join(capsys.readouterr().err.split())
    assert "Kafka: KafkaTimeoutError: Unable to bootstrap from 127.0.0.1:1. Is the broker of CITYSTREAM_BROKER" in text
