"""The shipped Prometheus alert rules: valid (`promtool check rules`), behaving as their unit tests say
(`promtool test rules`), and naming only metrics the fleet exports (the Grafana dashboard too)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import scf.app.supervisor
import scf.fleet.metrics
import scf.gateway.http_metrics
import scf.worker.sink  # noqa: F401  (each module registers its metrics on import)
from tests.support.services import IN_CI

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
METRIC = re.compile(r"\bscf_[a-z0-9_]+\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (scripts/lib.sh ensure_system_packages installs it)"
        if IN_CI:
            pytest.fail(message + ": CI requires it")
        pytest.skip(message)
    return found


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_the_rules_are_valid_and_pass_their_unit_tests() -> None:
    tool = promtool()
    checked = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [tool, "test", "rules", "alerts_test.yml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((RULES.parent / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert alerts - tested == set(), "alerts without a promtool unit test"


def test_rules_and_dashboards_name_only_exported_metrics() -> None:
    exported = exported_names()
    assert "scf_build_info" in exported and "scf_gateway_requests_total" in exported  # the checker reads
    used: dict[str, set[str]] = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            used.setdefault(RULES.name, set()).update(METRIC.findall(rule["expr"]))
    for dashboard in DASHBOARDS:
        exprs = re.findall(r'"expr":\s*"((?:[^"\\]|\\.)*)"', dashboard.read_text())
        used.setdefault(dashboard.name, set()).update(
            m for e in exprs for m in METRIC.findall(json.loads(f'"{e}"'))
        )
    unknown = {where: sorted(names - exported) for where, names in used.items() if names - exported}
    assert unknown == {}


# --- labels: every label a rule or panel names exists on the metrics it queries -----------------------

#: labels Prometheus adds to every scraped sample, and the one a supervisor adds to its children's
TARGET_LABELS = frozenset({"job", "instance", "process", "__name__"})
SELECTOR = re.compile(r"\b(scf_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
ALERT_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
LABEL_VALUES = re.compile(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")


def exported_labels() -> dict[str, frozenset[str]]:
    """Label names of every exported sample name: the collectors' declared labels (a labelled metric with
    no child yet has no sample to read them from), the samples' own, plus `le` on histogram buckets."""
    labels: dict[str, set[str]] = {}
    collectors = list(REGISTRY._collector_to_names)  # prometheus-client has no public list of them
    for collector in collectors:
        declared = set(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            names = {family.name, *(s.name for s in family.samples)}
            if family.type == "counter":
                names.add(f"{family.name}_total")
            if family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
            sample_labels = {label for s in family.samples for label in s.labels}
            for name in names:
                labels.setdefault(name, set()).update(declared | sample_labels)
                if name.endswith("_bucket"):
                    labels[name].add("le")
    return {name: frozenset(found) for name, found in labels.items()}


def label_problems(expr: str, also: str = "", exported: dict[str, frozenset[str]] | None = None) -> list[str]:
    """Labels `expr` (and `also`: its legend or alert text) names that none of its metrics carries."""
    exported = exported if exported is not None else exported_labels()
    problems = []
    for metric, matchers in SELECTOR.findall(expr):
        for label in MATCHER.findall(matchers):
            if label not in exported.get(metric, frozenset()) | TARGET_LABELS:
                problems.append(f"{metric} has no label {label!r}: {expr}")
    carried = frozenset().union(*(exported.get(m, frozenset()) for m in METRIC.findall(expr))) | TARGET_LABELS
    grouped = [
        label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()
    ]
    named = [*grouped, *LEGEND.findall(also), *ALERT_LABEL.findall(also)]
    problems += [f"no metric of {expr!r} has a label {label!r}" for label in named if label not in carried]
    return problems


def dashboard_queries(node: object) -> list[tuple[str, str]]:
    """(query, legend) of every panel target and (query, label) of every label_values variable."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            found.append((node["expr"], str(node.get("legendFormat", ""))))
        for key in ("query", "definition"):
            value = node.get(key)
            if isinstance(value, str) and (match := LABEL_VALUES.search(value)):
                found.append((match[1], "{{" + match[2] + "}}"))
        for value in node.values():
            found += dashboard_queries(value)
    elif isinstance(node, list):
        for value in node:
            found += dashboard_queries(value)
    return found


def test_rules_and_dashboards_name_only_labels_their_metrics_carry() -> None:
    exported = exported_labels()
    assert "endpoint" in exported["scf_breaker_state"] and "le" in exported["scf_queue_wait_seconds_bucket"]
    problems = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            text = " ".join(str(v) for v in rule.get("annotations", {}).values())
            problems += label_problems(rule["expr"], text, exported)
    for dashboard in DASHBOARDS:
        for expr, legend in dashboard_queries(json.loads(dashboard.read_text())):
            problems += label_problems(expr, legend, exported)
    assert problems == []


def test_the_label_check_catches_the_old_breaker_panels() -> None:
    """Negative control: the queries the dashboard had before (scf_breaker_state has no service_name)."""
    old = [
        ('max by (service_name) (scf_breaker_state{service_name=~"$service_name"})', "{{service_name}}"),
        ("count(max by (service_name) (scf_breaker_state) == 2) or vector(0)", ""),
    ]
    assert all(label_problems(expr, legend) for expr, legend in old)
    assert label_problems("sum by (reason) (rate(scf_dead_letters_total[5m]))", "{{ $labels.reason }}") == []
