"""The Prometheus alerting rules: loaded by the compose stack, well-formed, and about metrics and labels the workers
export (every PromQL expression of the rules and of the dashboards parsed with Prometheus's grammar)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.promql import (
    ALERTS,
    ROOT,
    TARGET_LABELS,
    alert_rules,
    exported_labels,
    parse,
    prometheus_exprs,
)

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
EXPORTED = exported_labels()


def test_prometheus_loads_the_rules_that_compose_mounts_beside_its_config() -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert prom["rule_files"] == ["alerts.yml"]  # relative to the config file's directory
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in COMPOSE["services"]["prometheus"]["volumes"]
                  if v.startswith("./"))
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./deploy/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert ALERTS.exists()


def test_every_rule_is_named_timed_graded_and_explained() -> None:
    rules = alert_rules()
    assert len(rules) >= 10
    names = [r["alert"] for r in rules]
    assert len(set(names)) == len(names), "alert names repeat"
    for r in rules:
        assert re.fullmatch(r"Citystream[A-Z][A-Za-z]+", r["alert"]), r["alert"]
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert re.fullmatch(r"\d+[smh]", r["for"]), r["alert"]
        assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
        assert len(r["annotations"]["summary"]) > 10 and len(r["annotations"]["description"]) > 80, r["alert"]
        # Templates name only labels the expression's result can have ({{ $labels.x }}).
        selectors, grouped = parse(r["expr"])
        kept = grouped | {m for name, _ in selectors for m in EXPORTED.get(name, ())} | TARGET_LABELS
        for label in re.findall(r"\$labels\.(\w+)", r["annotations"]["summary"] + r["annotations"]["description"]):
            assert label in kept, (r["alert"], label)


@pytest.mark.parametrize(("where", "expr"), prometheus_exprs(), ids=lambda x: x if len(x) < 60 else x[:60])
def test_every_expression_parses_and_names_exported_metrics_and_labels(where: str, expr: str) -> None:
    """A rule or panel on a metric or label no worker exports (a typo, a rename) would never fire or show."""
    selectors, grouped = parse(expr)  # ValueError on a syntax error, as Prometheus would refuse the file
    assert selectors, where
    labels: set[str] = set(TARGET_LABELS)
    for name, matchers in selectors:
        if name == "up":  # Prometheus's own series per target
            assert {m for m, _, _ in matchers} <= {"job"}, where
            continue
        assert name in EXPORTED, (where, name)
        labels |= EXPORTED[name]
        assert {m for m, _, _ in matchers} <= EXPORTED[name] | TARGET_LABELS, (where, name, matchers)
    assert grouped <= labels, (where, grouped - labels)


def test_the_dashboards_query_prometheus_too() -> None:
    boards = {where.split(":")[0] for where, _ in prometheus_exprs() if not where.startswith("alert ")}
    assert {"pipeline.json", "bikes.json", "incidents.json"} <= boards


def test_a_misspelt_metric_or_label_is_caught() -> None:
    """The checks above can fail: a wrong name and a wrong label are told apart from the right ones."""
    (name, matchers), = parse('citystream_consumer_lags{topik="x"}')[0]
    assert name not in EXPORTED and "citystream_consumer_lag" in EXPORTED
    assert {m for m, _, _ in matchers} - EXPORTED["citystream_consumer_lag"] == {"topik"}
    with pytest.raises(ValueError):
        parse("sum(rate(citystream_records_in_total[5m])")
