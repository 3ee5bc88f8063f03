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
