"""What the PromQL of the alerting rules and the dashboards selects, parsed with ``promql-parser`` (Prometheus's
grammar, in Rust): the tests check it against the metrics a worker registers and the series it exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}

Matcher = tuple[str, str, str]  # label, op (=, !=, =~, !~), value
_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}  # str(op)


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of ``deploy/prometheus/alerts.yml``."""
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def prometheus_exprs() -> list[tuple[str, str]]:
    """(where, expression) of every alerting rule and every Prometheus panel of the provisioned dashboards."""
    out = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            out += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel.get("targets", []) if "expr" in t]
    return out


def parse(expr: str) -> tuple[list[tuple[str, list[Matcher]]], set[str]]:
    """The vector selectors of ``expr`` (metric name, label matchers) and the labels it groups or matches on
    (``by``/``without``, ``on``/``ignoring``, ``group_left``/``group_right``). ValueError if it does not parse.

    >>> selectors, labels = parse('sum by (topic) (rate(m_total{reason!="x"}[5m])) > 1 and on (instance) up == 0')
    >>> selectors, sorted(labels)
    ([('m_total', [('reason', '!=', 'x')]), ('up', [])], ['instance', 'topic'])
    """
    selectors: list[tuple[str, list[Matcher]]] = []
    labels: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append((node.name, [(m.name, _OPS[str(m.op)], m.value) for m in node.matchers.matchers]))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            mod = node.modifier
            if mod.matching is not None:
                labels.update(mod.matching.labels)
            labels.update(mod.group_labels or ())

    promql_parser.walk(promql_parser.parse(expr), visit)
    return selectors, labels


def matches(labels: dict[str, str], matchers: list[Matcher]) -> bool:
    """Whether a series with ``labels`` is selected by ``matchers`` (regexes anchored, as in Prometheus).

    >>> matches({"topic": "citystream.bike.gps"}, [("topic", "=~", ".+[.]bike[.]gps")])
    True
    >>> matches({"topic": "citystream.bike.gps"}, [("measure", "=", "held")])
    False
    """
    for name, op, value in matchers:
        have = labels.get(name, "")
        ok = {"=": have == value, "!=": have != value, "=~": re.fullmatch(value, have) is not None,
              "!~": re.fullmatch(value, have) is None}[op]
        if not ok:
            return False
    return True


def exported_labels() -> dict[str, set[str]]:
    """Every series name a worker exports -> its label names (histograms: ``_bucket`` with ``le``, ``_count``,
    ``_sum``; counters: ``_total``), from a fresh registry of :class:`sinks.metrics.Metrics`."""
    from prometheus_client import CollectorRegistry

    from sinks.metrics import Metrics

    out: dict[str, set[str]] = {}
    metrics = Metrics.create(CollectorRegistry())
    for name, metric in metrics._asdict().items():
        if name == "registry":
            continue
        base, kind, labels = metric._name, metric._type, set(metric._labelnames)  # prometheus_client's own fields
        if kind == "counter":
            out[base + "_total"] = labels
        elif kind == "histogram":
            out[base + "_bucket"], out[base + "_count"], out[base + "_sum"] = labels | {"le"}, labels, labels
        else:
            out[base] = labels
    return out
