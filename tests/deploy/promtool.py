"""Prometheus's own ``promtool`` for the deployment tests, and the series the service really exports.

PromQL is checked by the real parser and evaluator, not by patterns: rule files with
``promtool check rules``, alerts with ``promtool test rules`` (unit tests in
``deploy/prometheus/tests``), and every dashboard query by evaluating it over one
sample of every series a fully exercised :class:`ServiceMetrics` exposes: a query
that names a metric or label value the service does not export returns nothing.
Without promtool the tests skip locally and fail in CI (``CI=true``), where
``.ci/run`` installs Debian's ``prometheus`` package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from zstream.service.metrics import ServiceMetrics

GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m"}
"""What the dashboard's Grafana interval variables stand for when a query is evaluated here."""
_SAMPLES = 60
_EVAL_TIME = "30m"


def promtool() -> str:
    """Path of promtool; skips the test locally when it is missing, fails it in CI."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not found: install Debian's 'prometheus' package (as .ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess:
    """``promtool ARGS``; its output is returned for the assertion message."""
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=120)


@dataclass(frozen=True)
class ExportedSeries:
    """One series in the service's exposition."""

    name: str
    labels: dict[str, str]
    kind: str

    def promtool_series(self) -> str:
        """The series as a ``promtool test rules`` input line, with the target labels Prometheus adds."""
        labels = {"job": "zstream", "instance": "replica:9108", **self.labels}
        body = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        return f"{self.name}{{{body}}}"

    def values(self) -> str:
        """Counters and histograms grow, gauges hold 1 (a served basis, a ready replica)."""
        return f"0+1x{_SAMPLES}" if self.kind in ("counter", "histogram") else f"1+0x{_SAMPLES}"


def exported_series() -> list[ExportedSeries]:
    """Every series of a :class:`ServiceMetrics` whose labelled metrics each have a child.

    Label values the code enumerates (refit outcomes, decisions, stages, operations) are
    created by ServiceMetrics itself; the free ones (topic, reason, partition, version) get a
    placeholder, as a running replica would give them some value.
    """
    metrics = ServiceMetrics()
    for metric in vars(metrics).values():
        names = getattr(metric, "_labelnames", ())  # prometheus-client keeps them there; no public accessor
        if names:
            metric.labels(**{name: "x" for name in names})
    metrics.set_basis_version("v-test")
    return [
        ExportedSeries(sample.name, dict(sample.labels), family.type)
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


def grafana_query(expr: str) -> str:
    """A dashboard query with Grafana's interval variables replaced by durations."""
    for variable, duration in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, duration)
    return expr


def write_query_checks(queries: dict[str, str], directory: Path) -> tuple[Path, Path]:
    """A rule file recording each query, and a unit test that each returns data over the exported series.

    Parameters
    ----------
    queries : dict of str to str
        Where each query is used (it names its recording rule, so promtool's failures say where) → PromQL.
    directory : Path

    Returns
    -------
    rules, tests : Path
        For ``promtool check rules`` and ``promtool test rules``.
    """
    rules = directory / "queries.yml"
    records = {"dashboard:" + re.sub(r"[^A-Za-z0-9]+", "_", where).strip("_"): expr for where, expr in queries.items()}
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": record, "expr": expr} for record, expr in records.items()
    ]}]}))
    series = exported_series()
    tests = directory / "queries_test.yml"
    tests.write_text(yaml.safe_dump({
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": item.promtool_series(), "values": item.values()} for item in series],
            "promql_expr_test": [
                # count(...) > bool 0 is 1 when the query returns anything, and nothing when it returns nothing
                {"expr": f"count({record}) > bool 0", "eval_time": _EVAL_TIME, "exp_samples": [{"labels": "{}", "value": 1}]}
                for record in records
            ],
        }],
    }))
    return rules, tests
