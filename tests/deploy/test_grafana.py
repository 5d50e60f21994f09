"""Grafana's provisioning and the Parley dashboard: every panel on the provisioned Prometheus
datasource, every PromQL expression parsed (promql-parser) and referring only to series and
labels Parley's code defines (or the documented future names), and the panels the issue asks
for present."""

from __future__ import annotations

import json
from typing import Any

import promql_parser
import pytest
import yaml

from .layout import GRAFANA, ROOT
from .metrics_in_code import (
    FUTURE_METRICS,
    defined_metrics,
    known_series,
    parse_panel_expr,
    problems,
    selectors,
)

DASHBOARD = GRAFANA / "dashboards" / "parley.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries() -> list[tuple[str, str]]:
    """(panel title and refId, expression) of every query."""
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel.get("targets", [])
    ]


def _ids() -> list[str]:
    return [where for where, _ in queries()]


def test_the_datasource_is_prometheus_with_a_fixed_uid() -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["uid"]


def test_every_panel_queries_the_provisioned_datasource() -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    expected = {"type": "prometheus", "uid": datasource["uid"]}
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == expected, panel["title"]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize(("where", "expr"), queries(), ids=_ids())
def test_expression_refers_only_to_what_parley_exports(where: str, expr: str) -> None:
    assert problems(parse_panel_expr(expr), known_series()) == []


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(parley_no_such_metric_total[5m])", "unknown series"),
        ('parley_active_sessions{session_id="x"}', "has no label"),
        ("sum by (provider) (parley_active_sessions)", "aggregation by 'provider'"),
        (
            "histogram_quantile(0.9, sum by (service) "
            "(rate(parley_event_loop_lag_seconds_bucket[5m])))",
            "without 'le'",
        ),
    ],
)
def test_reference_check_is_live(expr: str, problem: str) -> None:
    found = problems(parse_panel_expr(expr), known_series())
    assert any(problem in p for p in found), found


def test_a_dashboard_expression_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        parse_panel_expr("sum by (service (parley_active_sessions)")


def _series_under(call: str) -> set[str]:
    """Series read inside a ``call(...)`` of any dashboard query."""
    found: set[str] = set()
    for _, expr in queries():
        parsed = parse_panel_expr(expr)

        def visit(node: promql_parser.Expr) -> bool:
            if isinstance(node, promql_parser.Call) and node.func.name == call:
                found.update(s.name or "" for s in selectors(node))
            return True

        promql_parser.walk(parsed, visit)
    return found


def _aggregated_by(label: str) -> set[str]:
    found: set[str] = set()
    for _, expr in queries():
        parsed = parse_panel_expr(expr)

        def visit(node: promql_parser.Expr) -> bool:
            if (
                isinstance(node, promql_parser.AggregateExpr)
                and node.modifier is not None
                and label in node.modifier.labels
            ):
                found.update(s.name or "" for s in selectors(node.expr))
            return True

        promql_parser.walk(parsed, visit)
    return found


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    read = {s.name for _, expr in queries() for s in selectors(parse_panel_expr(expr))}
    assert "parley_active_sessions" in read
    assert "parley_cost_usd_total" in read
    percentiles = _series_under("histogram_quantile")
    for histogram in (
        "parley_voice_to_voice_seconds",
        "parley_stt_final_seconds",
        "parley_llm_first_token_seconds",
        "parley_tts_first_byte_seconds",
        "parley_interrupt_seconds",  # barge-in
    ):
        assert f"{histogram}_bucket" in percentiles, histogram
    assert "parley_provider_errors_total" in _aggregated_by("provider")
    assert "parley_cost_usd_total" in _aggregated_by("provider")


def test_future_metrics_agree_with_the_code_once_it_defines_them() -> None:
    defined = {m.name: m for m in defined_metrics()}
    for future in FUTURE_METRICS:
        if future.name in defined:
            assert defined[future.name].kind == future.kind, defined[future.name].where
            assert defined[future.name].labels == future.labels, defined[future.name].where


def test_future_metrics_are_documented() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for future in FUTURE_METRICS:
        assert future.name in text
