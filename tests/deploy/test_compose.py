"""docker-compose cannot run here (no Docker engine): check what can be checked without it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from citystream.config import DEV_PHONE_HASH_KEY, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_has_the_production_services() -> None:
    assert {"kafka", "clickhouse", "grafana", "prometheus", "worker-streams", "worker-sinks", "replay"} <= set(SERVICES)
    assert SERVICES["worker-streams"]["command"][-1] == "streams"
    assert SERVICES["worker-sinks"]["command"][-1] == "sinks"
    assert "KRaft" in (ROOT / "docker-compose.yml").read_text() or "controller" in str(SERVICES["kafka"]["environment"])


def test_bind_mounts_exist_and_ports_stay_on_loopback() -> None:
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name} mounts missing {src}"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert set(COMPOSE["volumes"]) >= {"kafka-data", "clickhouse-data", "grafana-data", "prometheus-data"}


def test_worker_environment_is_valid_settings() -> None:
    env = SERVICES["worker-streams"]["environment"]
    fields = set(Settings.model_fields)
    for key in env:
        assert key.startswith("CITYSTREAM_") and key.removeprefix("CITYSTREAM_").lower() in fields, key
    # ${VAR:-default} takes its default; ${VAR:?message} is required: compose refuses to start without it
    assert re.fullmatch(r"\$\{CITYSTREAM_PHONE_HASH_KEY:\?[^}]+\}", env["CITYSTREAM_PHONE_HASH_KEY"])
    resolved = {k.removeprefix("CITYSTREAM_").lower(): re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(v)) for k, v in env.items()}
    resolved["phone_hash_key"] = "a-production-secret"
    s = Settings(**resolved)
    assert s.phone_hash_key.get_secret_value() != DEV_PHONE_HASH_KEY
    assert s.broker_bootstrap == "kafka:9092"
    assert not s.embedded_clickhouse and s.clickhouse_dsn.endswith("@clickhouse:8123/citystream")
    assert s.changelog_end_markers is False  # Apache Kafka needs no Tansu workaround


def test_prometheus_scrapes_the_workers_metrics_port() -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    port = int(SERVICES["worker-streams"]["environment"]["CITYSTREAM_METRICS_PORT"])
    targets = {(n, sd["port"]) for job in prom["scrape_configs"] for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert targets == {("worker-streams", port), ("worker-sinks", port)}


def test_dockerfile_copies_existing_paths_and_replay_sample_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
    sample = SERVICES["replay"]["command"][1].removeprefix("/opt/citystream/")
    assert (ROOT / sample / "manifest.json").exists()


def test_grafana_provisioning_matches_dashboards() -> None:
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/datasources.yaml").read_text())
    uids = {d["uid"]: d for d in ds["datasources"]}
    assert uids["clickhouse"]["jsonData"]["defaultDatabase"] == "citystream"
    assert uids["clickhouse"]["jsonData"]["host"] == "clickhouse"
    boards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert boards
    for path in boards:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, (path.name, panel["title"])


def test_generated_dashboards_are_up_to_date() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", ROOT / "deploy/grafana/generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, text in gen.render().items():
        assert (ROOT / "deploy/grafana/dashboards" / name).read_text() == text, f"run deploy/grafana/generate.py ({name})"


@pytest.mark.parametrize("path", sorted((ROOT / "sinks/sql").glob("*.sql")), ids=lambda p: p.name)
def test_migrations_are_named_in_order(path: Path) -> None:
    assert re.match(r"^\d{3}_[a-z0-9_]+\.sql$", path.name)
