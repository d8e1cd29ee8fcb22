"""Dashboard, alert rules and scrape config use exactly the metrics the service defines."""

from __future__ import annotations

import json

import pytest
from deploy_checks import (
    ALERTS_FILE,
    BUILTIN_SERIES,
    DASHBOARD_FILE,
    SCRAPE_FILE,
    TARGET_LABELS,
    alert_rules,
    dashboard_expressions,
    defined_metrics,
    parse_promql,
    yaml_documents,
)

from zstream.service.config import ServiceConfig
from zstream.service.metrics import CLASSIFICATION_LABELS, REFIT_OUTCOMES

DASHBOARD = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
EXPRESSIONS = {
    "alert rules": [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()],
    "dashboard": list(dashboard_expressions(DASHBOARD)),
}
# Label values the code enumerates: a typo in a selector would match nothing, silently.
ENUMERATED_LABEL_VALUES = {"outcome": set(REFIT_OUTCOMES), "label": set(CLASSIFICATION_LABELS)}


def test_the_promql_reader_separates_metrics_from_functions_labels_and_ranges():
    use = parse_promql(
        'sum by (topic) (rate(zstream_dlq_records_total{reason="bad"}[$__rate_interval])) '
        '/ ignoring (label) group_left sum(up{job="zstream"} offset 5m) > 1e3'
    )
    assert use.metrics == {"zstream_dlq_records_total", "up"}
    assert use.matchers == {"zstream_dlq_records_total": {"reason": {"bad"}}, "up": {"job": {"zstream"}}}
    assert use.grouping_labels == {"topic", "label"}


def _problems(where: str, expr: str, defined: dict) -> list[str]:
    """What is wrong with one PromQL expression: unknown series, labels or enumerated label values."""
    use = parse_promql(expr)
    if not use.metrics:
        return [f"{where}: no metric found in {expr!r}"]
    unknown = use.metrics - defined.keys() - BUILTIN_SERIES
    if unknown:
        return [f"{where}: {sorted(unknown)} not defined in zstream.service.metrics (expr {expr!r})"]
    problems = []
    for metric, matchers in use.matchers.items():
        if metric in BUILTIN_SERIES:
            continue
        unknown_labels = matchers.keys() - defined[metric].labels - TARGET_LABELS
        if unknown_labels:
            problems.append(f"{where}: {metric} has no label(s) {sorted(unknown_labels)}")
        for label, values in matchers.items():
            allowed = ENUMERATED_LABEL_VALUES.get(label)
            if allowed is not None and not values <= allowed:
                problems.append(f"{where}: {label}={sorted(values - allowed)} never emitted")
    return problems


def test_typos_in_a_metric_a_label_or_a_label_value_are_reported():
    defined = defined_metrics()
    assert _problems("typo", "rate(zstream_dlq_record_total[5m])", defined)
    assert _problems("typo", 'rate(zstream_dlq_records_total{reasn="x"}[5m])', defined)
    assert _problems("typo", 'zstream_refits_total{outcome="promotd"}', defined)
    assert not _problems("fine", 'zstream_refits_total{outcome="promoted"}', defined)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_every_expression_uses_series_labels_and_values_the_code_defines(source):
    defined = defined_metrics()
    problems = [problem for where, expr in EXPRESSIONS[source] for problem in _problems(where, expr, defined)]
    assert EXPRESSIONS[source], f"no expressions found in the {source}"
    assert not problems, "\n".join(problems)


def test_the_dashboard_shows_every_metric_the_service_exports():
    on_dashboard = set().union(*(parse_promql(expr).metrics for _, expr in dashboard_expressions(DASHBOARD)))
    missing = {definition.name for series, definition in defined_metrics().items() if not definition.series_names & on_dashboard}
    assert not missing, f"deploy/grafana/zstream.json has no panel for {sorted(missing)}"


def test_dashboard_panels_have_unique_ids_and_use_the_datasource_variable():
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in DASHBOARD["templating"]["list"]}
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"].strip("${}") in variables, f"panel {panel['title']!r}"


def test_alert_rules_are_complete_and_cover_the_required_conditions():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= rule.keys(), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
    used = set().union(*(parse_promql(rule["expr"]).metrics for rule in rules))
    # lag growing, DLQ rate, no refit, readiness down
    assert {"zstream_consumer_lag", "zstream_dlq_records_total", "zstream_refits_total", "zstream_ready"} <= used


def test_prometheus_scrapes_the_service_port_and_loads_the_rules():
    scrape = yaml_documents(SCRAPE_FILE)[0]
    port = ServiceConfig().metrics_port
    job = next(job for job in scrape["scrape_configs"] if job["job_name"] == "zstream")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [sd["port"] for sd in job["dns_sd_configs"]] == [port]
    assert any(rule_file.endswith(ALERTS_FILE.name) for rule_file in scrape["rule_files"])
    target_down = next(rule for rule in alert_rules() if "up" in parse_promql(rule["expr"]).metrics)
    assert parse_promql(target_down["expr"]).matchers["up"]["job"] == {job["job_name"]}
