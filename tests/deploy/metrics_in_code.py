"""The Prometheus metrics Parley's code defines, read from its source (no import, so what is
installed does not matter), and the PromQL references of a deployment file checked against
them.

A metric is a call of a ``prometheus_client`` class (or Parley's ``latency_histogram``) whose
name is a string literal; its labels are read when they are literals too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import promql_parser

from .layout import ROOT

_KINDS = {
    "Counter": "counter",
    "Gauge": "gauge",
    "Histogram": "histogram",
    "Summary": "summary",
    "latency_histogram": "histogram",
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series the Prometheus server makes itself for every target.
PROMETHEUS_SERIES = {"up": frozenset[str]()}


@dataclass(frozen=True)
class MetricDef:
    """One metric family: its name, type, label names (None: not literal) and definition."""

    name: str
    kind: str
    labels: frozenset[str] | None
    where: str

    def series(self) -> dict[str, frozenset[str] | None]:
        """The series names this family exports, each with its labels."""
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        if self.kind == "counter":
            return {f"{base}_total": self.labels, f"{base}_created": self.labels}
        if self.kind in ("histogram", "summary"):
            bucket = self.labels | {"le"} if self.labels is not None else None
            found = {f"{base}_sum": self.labels, f"{base}_count": self.labels}
            if self.kind == "histogram":
                found[f"{base}_bucket"] = bucket
            return found
        return {base: self.labels}


# Metrics the issue names that another engineer's change adds; the dashboard and docs use these
# names now. Once the code defines one, a test checks that the definition agrees (type, labels)
# and the entry may go.
FUTURE_METRICS = (
    MetricDef(
        "parley_cost_usd_total",
        "counter",
        frozenset({"service", "provider", "kind"}),
        "issue 10 (usage and cost): not defined yet",
    ),
)


def _literal_strings(node: ast.expr | None) -> frozenset[str] | None:
    if isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return frozenset(str(e.value) for e in node.elts if isinstance(e, ast.Constant))
    return None


def _definitions(path: Path) -> Iterator[MetricDef]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called not in _KINDS:
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        name_node = node.args[0] if node.args else keywords.get("name")
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            continue
        labels_node = node.args[2] if len(node.args) > 2 else None
        labels_node = labels_node or keywords.get("labelnames") or keywords.get("labels")
        labels = _literal_strings(labels_node) if labels_node else frozenset()
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        yield MetricDef(name_node.value, _KINDS[called], labels, where)


@cache
def defined_metrics() -> tuple[MetricDef, ...]:
    """Every metric defined in the packages of libs/ and services/ (tests left out)."""
    sources = sorted(ROOT.glob("libs/*/parley_*/**/*.py")) + sorted(
        ROOT.glob("services/*/parley_*/**/*.py")
    )
    return tuple(d for path in sources for d in _definitions(path))


def known_series(*, include_future: bool = True) -> dict[str, frozenset[str] | None]:
    """Every series name a deployment file may refer to, with its labels."""
    known: dict[str, frozenset[str] | None] = dict(PROMETHEUS_SERIES)
    # What the code defines wins over what a future name assumed.
    for metric in (FUTURE_METRICS if include_future else ()) + defined_metrics():
        known.update(metric.series())
    return known


# Grafana's own variables, replaced by a plausible value so that the expression parses.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


def parse_panel_expr(expr: str) -> promql_parser.Expr:
    """A dashboard expression parsed as Prometheus would, once Grafana filled its variables."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def _nodes(expr: promql_parser.Expr) -> list[promql_parser.Expr]:
    found: list[promql_parser.Expr] = []

    def visit(node: promql_parser.Expr) -> bool:
        found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return found


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    """Every series selector in ``expr``."""
    return [n for n in _nodes(expr) if isinstance(n, promql_parser.VectorSelector)]


def _unparen(expr: promql_parser.Expr) -> promql_parser.Expr:
    while isinstance(expr, promql_parser.ParenExpr):
        expr = expr.expr
    return expr


def problems(expr: promql_parser.Expr, known: dict[str, frozenset[str] | None]) -> list[str]:
    """What is wrong with ``expr``'s references: unknown series, labels a series does not
    have, aggregations by labels none of their series has, histogram_quantile over an
    aggregation that drops ``le``. Empty when nothing is."""
    found = []
    for selector in selectors(expr):
        if selector.name not in known:
            found.append(f"unknown series {selector.name!r}")
            continue
        labels = known[selector.name]
        if labels is None:
            continue
        for matcher in selector.matchers.matchers:
            if matcher.name not in labels | TARGET_LABELS:
                found.append(f"{selector.name} has no label {matcher.name!r}")
    for node in _nodes(expr):
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            inner = [known.get(s.name or "") for s in selectors(node.expr)]
            if any(labels is None for labels in inner):
                continue
            available = frozenset().union(*(s for s in inner if s is not None)) | TARGET_LABELS
            for label in node.modifier.labels:
                if (
                    node.modifier.type == promql_parser.AggModifierType.By
                    and label not in available
                ):
                    found.append(f"aggregation by {label!r}, which none of its series has")
        if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
            inner_expr = _unparen(node.args[1])
            keeps_le = (
                isinstance(inner_expr, promql_parser.AggregateExpr)
                and inner_expr.modifier is not None
                and inner_expr.modifier.type == promql_parser.AggModifierType.By
                and "le" in inner_expr.modifier.labels
            ) or not isinstance(inner_expr, promql_parser.AggregateExpr)
            if not keeps_le:
                found.append("histogram_quantile over an aggregation without 'le'")
    return found
