"""Alert rules, their unit tests, the dashboard and the scrape config, checked with Prometheus's promtool
against the metrics the service really exports."""

from __future__ import annotations

import json
import re

from deploy_checks import ALERT_TESTS_FILE, ALERTS_FILE, DASHBOARD_FILE, SCRAPE_FILE, alert_rules, dashboard_expressions, yaml_documents
from promtool import exported_series, grafana_query, run_promtool, write_query_checks

from zstream.service.config import ServiceConfig

DASHBOARD = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
ALERT_TESTS = yaml_documents(ALERT_TESTS_FILE)[0]
TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus attaches to every scraped series."""
COMPOSE_RULES = "/etc/prometheus/rules/alerts.yml"
"""Where compose.yaml mounts alerts.yml for Prometheus."""


def _passes(result) -> None:
    assert result.returncode == 0, f"promtool {result.args[1:]}:\n{result.stdout}{result.stderr}"


def test_alert_rules_pass_promtool_check():
    _passes(run_promtool("check", "rules", ALERTS_FILE))


def test_alert_unit_tests_pass():
    _passes(run_promtool("test", "rules", ALERT_TESTS_FILE))


def test_every_alert_has_a_unit_test_that_fires_it():
    fired = {case["alertname"] for test in ALERT_TESTS["tests"] for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_alert_unit_tests_feed_series_the_service_exports():
    """Alerts fire in their unit tests only on these series, so a renamed metric or label fails them."""
    exported: dict[str, set[str]] = {}
    for series in exported_series():
        exported.setdefault(series.name, set()).update(series.labels)
    scrape_jobs = {job["job_name"] for job in yaml_documents(SCRAPE_FILE)[0]["scrape_configs"]}
    for test in ALERT_TESTS["tests"]:
        for item in test["input_series"]:
            name, body = re.fullmatch(r"(\w+)\{(.*)\}", item["series"]).groups()
            labels = dict(re.findall(r'(\w+)="([^"]*)"', body))
            if name == "up":  # Prometheus's own series for a scrape target
                assert labels["job"] in scrape_jobs, f"{test['name']}: job {labels['job']!r} is not scraped"
                continue
            assert name in exported, f"{test['name']}: {name} is not exported by zstream.service.metrics"
            unknown = labels.keys() - exported[name] - TARGET_LABELS
            assert not unknown, f"{test['name']}: {name} has no label(s) {sorted(unknown)}"


def test_target_down_watches_the_scraped_job():
    target_down = next(rule for rule in alert_rules() if rule["alert"] == "ZstreamTargetDown")
    job = next(job for job in yaml_documents(SCRAPE_FILE)[0]["scrape_configs"] if job["job_name"] == "zstream")
    assert f'job="{job["job_name"]}"' in target_down["expr"]


def test_dashboard_queries_are_valid_and_return_data_from_the_exported_series(tmp_path):
    queries = {where: grafana_query(expr) for where, expr in dashboard_expressions(DASHBOARD)}
    rules, tests = write_query_checks(queries, tmp_path)
    _passes(run_promtool("check", "rules", rules))
    _passes(run_promtool("test", "rules", tests))


def test_the_dashboard_shows_every_metric_the_service_exports():
    queries = " ".join(expr for _, expr in dashboard_expressions(DASHBOARD))
    families = {series.name.removesuffix("_total").removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
                for series in exported_series()}
    missing = {name for name in families if not re.search(rf"\b{name}(_total|_bucket|_sum|_count)?\b", queries)}
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
    assert {"ZstreamConsumerLagGrowing", "ZstreamDLQRateHigh", "ZstreamNoRefit", "ZstreamNotReady"} <= set(names)


def test_prometheus_config_passes_promtool_and_scrapes_the_service_port(tmp_path):
    scrape = yaml_documents(SCRAPE_FILE)[0]
    assert COMPOSE_RULES in scrape["rule_files"]
    local = tmp_path / "prometheus.yml"  # the rule file where compose mounts it, here
    local.write_text(SCRAPE_FILE.read_text(encoding="utf-8").replace(COMPOSE_RULES, str(ALERTS_FILE)))
    _passes(run_promtool("check", "config", local))
    job = next(job for job in scrape["scrape_configs"] if job["job_name"] == "zstream")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [sd["port"] for sd in job["dns_sd_configs"]] == [ServiceConfig().metrics_port]
