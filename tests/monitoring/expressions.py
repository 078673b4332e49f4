"""The PromQL that operators read: every dashboard panel's queries and every alert rule's expression.

Also the small amount of PromQL reading the tests need (the series selectors and grouping labels an
expression uses), and the metric catalogue as series names -> label names, so that an expression
can be checked against ``service_runtime.metrics`` without a server.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from service_runtime import metrics

__all__ = [
    "DASHBOARD",
    "GRAFANA_VARIABLES",
    "README",
    "RULE_FILE",
    "TARGET_LABELS",
    "Expression",
    "Selector",
    "alert_rules",
    "catalogue",
    "dashboard",
    "expressions",
    "grouping_labels",
    "panels",
    "selectors",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "deploy" / "monitoring"
DASHBOARD = MONITORING / "dashboard.json"
RULE_FILE = MONITORING / "alerts.yaml"
README = MONITORING / "README.md"

# What Grafana puts in for its built-in variables when a query is sent to Prometheus by hand.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
# Labels Prometheus attaches to every scraped series (namespace: on Kubernetes, by the operator).
TARGET_LABELS = frozenset({"job", "instance", "namespace"})

_SELECTOR = re.compile(r"\b(?P<name>workout_[a-z0-9_]+|nats_[a-z0-9_]+|up(?=\{))(?:\{(?P<matchers>[^}]*)\})?")
_MATCHER = re.compile(r'(?P<label>[a-zA-Z_]\w*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\((?P<labels>[^)]*)\)")


@dataclass(frozen=True)
class Expression:
    """One query as Prometheus receives it; ``where`` names its panel and refId, or its alert."""

    where: str
    promql: str


@dataclass(frozen=True)
class Selector:
    """A series selector inside an expression: ``name{label op "value", ...}``."""

    text: str
    name: str
    matchers: tuple[tuple[str, str, str], ...]


@cache
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


@cache
def alert_rules() -> tuple[dict[str, Any], ...]:
    groups = yaml.safe_load(RULE_FILE.read_text())["groups"]
    return tuple(rule for group in groups for rule in group["rules"])


def for_prometheus(expr: str) -> str:
    """A panel's query with Grafana's variables filled in; any other variable is an error."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise ValueError(f"a template variable the tests cannot fill in: {expr}")
    return expr


def expressions() -> list[Expression]:
    """Every panel query, then every alert expression."""
    found = [
        Expression(f"panel {panel['title']!r} {target['refId']}", for_prometheus(target["expr"]))
        for panel in panels()
        for target in panel.get("targets", [])
    ]
    found += [Expression(f"alert {rule['alert']}", rule["expr"].strip()) for rule in alert_rules()]
    return found


def selectors(promql: str) -> list[Selector]:
    found = []
    for match in _SELECTOR.finditer(promql):
        matchers = tuple((m["label"], m["op"], m["value"]) for m in _MATCHER.finditer(match["matchers"] or ""))
        found.append(Selector(match.group(0), match["name"], matchers))
    return found


def grouping_labels(promql: str) -> set[str]:
    """The labels named in by/without/on/ignoring/group_left/group_right clauses."""
    return {
        label.strip() for match in _GROUPING.finditer(promql) for label in match["labels"].split(",") if label.strip()
    }


# The NATS servers' own series the rules read: prometheus-nats-exporter's JetStream collector
# (nats-io/prometheus-nats-exporter collector/jsz.go) with the chart's `-prefix=nats -jsz=all`.
_NATS_SERVER_LABELS = frozenset({"server_id", "server_name", "cluster", "domain", "meta_leader", "is_meta_leader"})
_NATS_STREAM_LABELS = _NATS_SERVER_LABELS | {
    "account",
    "account_name",
    "account_id",
    "stream_name",
    "stream_leader",
    "is_stream_leader",
    "stream_raft_group",
}
NATS_EXPORTER_SERIES: dict[str, tuple[str, frozenset[str]]] = {
    "nats_server_jetstream_disabled": ("1 while JetStream is off on the server.", _NATS_SERVER_LABELS),
    "nats_server_total_message_bytes": ("Bytes JetStream stores on the server.", _NATS_SERVER_LABELS),
    "nats_server_max_storage": ("The server's JetStream file storage limit.", _NATS_SERVER_LABELS),
    "nats_stream_consumer_count": ("Consumers of the stream.", frozenset(_NATS_STREAM_LABELS)),
    "nats_stream_total_bytes": ("Bytes the stream holds.", frozenset(_NATS_STREAM_LABELS)),
    "nats_stream_limit_bytes": ("The stream's max_bytes (-1: none).", frozenset(_NATS_STREAM_LABELS)),
}


@cache
def catalogue() -> dict[str, tuple[str, frozenset[str]]]:
    """Every series name the services export -> (the metric's help text, its label names)."""
    series: dict[str, tuple[str, frozenset[str]]] = {"up": ("Whether the target answered the scrape.", frozenset())}
    series |= NATS_EXPORTER_SERIES
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        (family,) = value.describe()
        labels = frozenset(value._labelnames)
        if family.type == "counter":
            series[f"{family.name}_total"] = (family.documentation, labels)
        elif family.type == "histogram":
            series[f"{family.name}_bucket"] = (family.documentation, labels | {"le"})
            series[f"{family.name}_sum"] = (family.documentation, labels)
            series[f"{family.name}_count"] = (family.documentation, labels)
        else:
            series[family.name] = (family.documentation, labels)
    return series
