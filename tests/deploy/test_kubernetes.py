"""deploy/k8s, checked without a cluster: every overlay builds with `kubectl kustomize`, its core objects
validate against Kubernetes' schemas (kubernetes-validate, strict) and its KEDA objects against KEDA's
(@kubernetes-models/keda), and the fleet's own rules hold: probes on the paths the processes serve, grace
above the drain, the hardened securityContext, a PDB per role, autoscaling on the queues the workers read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scf.connectors.registry import available_types
from scf.schemas.topology import work_queue
from tests.deploy.keda_schema import validate_keda
from tests.deploy.tools import ROOT, run, tool

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
#: the oldest Kubernetes still in common support, and the newest kubernetes-validate knows
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
MIB = 1024 * 1024
PDF_SANDBOX_BYTES = 512 * MIB  # PdfConfig.memory_limit_mb's default
PDF_PARSERS = 2  # PdfConfig.max_parsers' default
WORKER_RSS_BYTES = 96 * MIB  # a worker's RSS measured after load (docs/deployment.md)


def build(path: Path) -> list[dict[str, Any]]:
    done = run(
        [tool("kubectl", "kubectl >= 1.21, whose kustomize builds components"), "kustomize", str(path)]
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS, ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    path: Path = request.param
    return build(path)


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def parse_quantity(value: str | int) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    text = str(value)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def core_problems(documents: list[dict[str, Any]], version: str) -> list[str]:
    problems = []
    for document in documents:
        where = f"{document['kind']}/{document['metadata']['name']}"
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if not document["apiVersion"].startswith("keda.sh/"):
                problems.append(f"{where}: no schema for {document['apiVersion']} in Kubernetes {version}")
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message}")
    return problems


def test_there_are_a_dev_and_a_production_overlay_and_no_old_manifest() -> None:
    assert {p.name for p in OVERLAYS} == {"dev", "production"}
    assert not (K8S / "fleet.yaml").exists()
    stale = [
        p for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if "k8s/fleet.yaml" in p.read_text()
    ]
    assert stale == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_overlay_validates_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]], version: str
) -> None:
    assert core_problems(rendered, version) == []


def test_the_secret_example_validates() -> None:
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert core_problems([example], kubernetes_validate.latest_version()) == []
    deployments = of_kind(build(K8S / "base"), "Deployment")
    keys = {
        item["key"]
        for d in deployments.values()
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
        for item in v["secret"]["items"]
    }
    assert keys <= set(example["stringData"]), "a pod mounts a Secret key the example does not name"


def test_the_validators_catch_a_broken_object() -> None:
    """Negative control: the same checks refuse a Deployment and a ScaledObject with wrong types."""
    deployment = of_kind(build(K8S / "base"), "Deployment")["scf-gateway"]
    deployment["spec"]["replicas"] = "two"
    assert core_problems([deployment], kubernetes_validate.latest_version()) != []
    scaled = yaml.safe_load((K8S / "components" / "keda" / "scaledobject-worker-pdf.yaml").read_text())
    scaled["spec"]["minReplicaCount"] = "zero"
    del scaled["spec"]["triggers"][0]["type"]
    problems = validate_keda([scaled])
    assert len(problems) == 1 and "minReplicaCount" in problems[0] and "type" in problems[0]


def test_keda_objects_validate_against_kedas_schema(rendered: list[dict[str, Any]]) -> None:
    keda = [d for d in rendered if d["apiVersion"].startswith("keda.sh/")]
    assert validate_keda(keda) == []


def test_each_overlay_picks_one_autoscaler_per_worker_group(rendered: list[dict[str, Any]]) -> None:
    targets = [
        d["spec"]["scaleTargetRef"]["name"]
        for d in rendered
        if d["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
    ]
    assert sorted(targets) == ["scf-worker-light", "scf-worker-pdf"]


def worker_types(deployment: dict[str, Any]) -> list[str]:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return str(args[args.index("--types") + 1]).split(",")


def test_keda_scales_each_worker_group_on_the_queues_it_reads() -> None:
    documents = build(K8S / "overlays" / "production")
    deployments = of_kind(documents, "Deployment")
    scaled = of_kind(documents, "ScaledObject")
    served = {t for name in ("scf-worker-light", "scf-worker-pdf") for t in worker_types(deployments[name])}
    assert served == set(available_types()), "every service type is served by exactly one group"
    for name in ("scf-worker-light", "scf-worker-pdf"):
        triggers = scaled[name]["spec"]["triggers"]
        assert {t["metadata"]["queueName"] for t in triggers} == {
            work_queue(t) for t in worker_types(deployments[name])
        }
        assert all(
            t["type"] == "rabbitmq" and t["authenticationRef"]["name"] == "scf-rabbitmq" for t in triggers
        )
    assert scaled["scf-worker-pdf"]["spec"]["minReplicaCount"] == 0
    auth = of_kind(documents, "TriggerAuthentication")["scf-rabbitmq"]["spec"]["secretTargetRef"]
    assert auth == [{"parameter": "host", "name": "scf-secrets", "key": "KEDA_RABBITMQ_URL"}]


def served_paths() -> set[str]:
    source = (ROOT / "scf" / "fleet" / "http.py").read_text()
    return set(re.findall(r'path == "(/[a-z]+)"', source))


def test_every_deployment_is_hardened_probed_and_drains(rendered: list[dict[str, Any]]) -> None:
    config = next(iter(of_kind(rendered, "ConfigMap").values()))["data"]
    grace = float(config["SCF_SHUTDOWN_GRACE"])
    paths = served_paths()
    assert {"/healthz", "/readyz"} <= paths
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == {"scf-dispatcher", "scf-gateway", "scf-worker-light", "scf-worker-pdf"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"] | {"fsGroup": 10001} == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        assert mounts[config["SCF_DATA_DIR"]] in empty_dirs and mounts["/tmp"] in empty_dirs, name
        assert config["SCF_SECRETS_DIR"] in mounts, name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["port"] == "metrics" and get["path"] in paths, (name, probe)
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == int(
            config["SCF_METRICS_PORT"]
        )
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_stop_seconds = float(pre_stop[-1]) if pre_stop else 0.0
        assert pod["terminationGracePeriodSeconds"] > grace + pre_stop_seconds, name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], name
        assert container["args"][:2] == ["scf", name.removeprefix("scf-").split("-")[0]]
        if name.startswith("scf-worker"):
            assert container["args"][container["args"].index("--processes") + 1] == "1", name
    gateway = deployments["scf-gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    pdf_limit = parse_quantity(
        deployments["scf-worker-pdf"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "memory"
        ]
    )
    assert pdf_limit >= PDF_PARSERS * PDF_SANDBOX_BYTES + WORKER_RSS_BYTES


def test_every_role_has_a_disruption_budget_and_the_gateway_a_service(rendered: list[dict[str, Any]]) -> None:
    deployments = of_kind(rendered, "Deployment")
    budgets = of_kind(rendered, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, name
    service = of_kind(rendered, "Service")["scf-gateway"]["spec"]
    assert service["ports"] == [{"name": "http", "port": 8306, "targetPort": "http", "protocol": "TCP"}]
    gateway_labels = deployments["scf-gateway"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= gateway_labels.items()


def test_network_policy_admits_only_the_gateway_port_and_metrics_from_monitoring(
    rendered: list[dict[str, Any]],
) -> None:
    policies = of_kind(rendered, "NetworkPolicy").values()
    ingress = [(p["spec"]["podSelector"], rule) for p in policies for rule in p["spec"].get("ingress", [])]
    opened = sorted(
        (port["port"], str(rule.get("from", "anyone"))) for _, rule in ingress for port in rule["ports"]
    )
    assert opened == [
        (8306, "anyone"),
        (9464, "[{'namespaceSelector': {'matchLabels': {'kubernetes.io/metadata.name': 'monitoring'}}}]"),
    ]
    gateway_only = [selector for selector, rule in ingress if rule["ports"][0]["port"] == 8306]
    assert gateway_only == [
        {"matchLabels": {"app.kubernetes.io/name": "scf", "app.kubernetes.io/component": "gateway"}}
    ]
    deny_all = [
        p
        for p in policies
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny_all) == 1
