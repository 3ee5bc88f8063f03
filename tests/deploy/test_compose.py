"""docker-compose.yml, checked without Docker: it validates against the compose specification
(check-jsonschema's vendored compose-spec schema) as written and as rendered with an .env made from
.env.example by deploy/compose/fill-env.sh; .env.example names every variable; the stack's shape is what
docs/deployment.md promises (healthchecks, gateway port, worker groups, drain, access control on)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from scf.connectors.registry import available_types
from scf.fleet.settings import Settings
from tests.deploy.compose_env import MissingVariableError, interpolate, names, read_env_file
from tests.deploy.tools import ROOT, run, tool

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
FILL_ENV = ROOT / "deploy" / "compose" / "fill-env.sh"
FLEET = ("dispatcher", "gateway", "worker-light", "worker-pdf")
GIB = 1024**3


def check_compose(path: Path) -> tuple[bool, str]:
    checker = tool("check-jsonschema", "the dev extra: pip install check-jsonschema")
    done = run([checker, "--builtin-schema", "vendor.compose-spec", str(path)])
    return done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def filled_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    done = run(["sh", str(FILL_ENV), str(env_file)])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "fill-env.sh must not print the secrets it makes"
    return read_env_file(env_file)


@pytest.fixture(scope="module")
def stack(filled_env: dict[str, str]) -> dict[str, Any]:
    rendered: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), filled_env))
    return rendered


def test_the_compose_file_validates_against_the_compose_spec(
    tmp_path: Path, filled_env: dict[str, str]
) -> None:
    valid, output = check_compose(COMPOSE)
    assert valid, output
    rendered = tmp_path / "docker-compose.yml"
    rendered.write_text(interpolate(COMPOSE.read_text(), filled_env))
    valid, output = check_compose(rendered)
    assert valid, output


def test_the_checker_refuses_a_broken_compose_file(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["gateway"]["restart_policy"] = "always"  # not a service key (deploy.restart_policy is)
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    valid, output = check_compose(path)
    assert not valid and "restart_policy" in output


def test_env_example_names_every_variable_and_compose_refuses_each_empty_secret(
    filled_env: dict[str, str],
) -> None:
    example = read_env_file(ENV_EXAMPLE)
    assert names(COMPOSE.read_text()) == set(example)
    secrets = sorted(name for name, value in example.items() if value == "")
    assert "SCF_SECRET_KEY" in secrets and len(secrets) == 6
    for secret in secrets:  # as copied, before fill-env.sh: refused, never run with an empty secret
        with pytest.raises(MissingVariableError, match=secret):
            interpolate(COMPOSE.read_text(), filled_env | {secret: ""})


def test_filled_env_has_a_fernet_key_and_url_safe_passwords(filled_env: dict[str, str]) -> None:
    from cryptography.fernet import Fernet

    Fernet(filled_env["SCF_SECRET_KEY"])
    passwords = [v for k, v in filled_env.items() if k.endswith("_PASSWORD")]
    assert len(passwords) == 5 and all(len(p) == 32 and p.isalnum() for p in passwords)


def test_infrastructure_has_healthchecks_and_redis_persists(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in ("rabbitmq", "redis", "postgres", *FLEET):
        assert services[name]["healthcheck"]["test"], name
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"


def test_fleet_services_drain_restart_and_keep_their_data(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in FLEET:
        service = services[name]
        env = service["environment"]
        grace = float(env["SCF_SHUTDOWN_GRACE"])
        assert grace == Settings().scf_shutdown_grace
        # a worker supervisor waits grace + 5 s before it kills a child; the container outlives that
        assert int(service["stop_grace_period"].removesuffix("s")) > grace + 5, name
        assert service["restart"] == "unless-stopped"
        assert "scf-data:/var/lib/scf" in service["volumes"]
        assert env["SCF_AUTH"] == "on" and env["SCF_SECRET_KEY"], name
        assert service["depends_on"]["broker-users"]["condition"] == "service_completed_successfully"
    assert "scf-data" in stack["volumes"]


def test_gateway_is_published_and_workers_are_split_in_groups(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8306:8306"]
    assert services["gateway"]["environment"]["SCF_AMQP_URL"].startswith("amqp://scf-gateway:")
    assert services["dispatcher"]["environment"]["SCF_TRUSTED_FORWARDERS"] == "scf-gateway"

    def types(name: str) -> list[str]:
        command = services[name]["command"]
        return str(command[command.index("--types") + 1]).split(",")

    assert types("worker-pdf") == ["pdf"]
    assert sorted(types("worker-light")) == sorted(
        ["postgresql", "redis", "rabbitmq", "api", "csv", "qdrant", "elasticsearch", "minio"]
    )
    assert set(types("worker-light")) | set(types("worker-pdf")) == set(available_types())
    limit = services["worker-pdf"]["mem_limit"]
    assert limit.endswith("g") and float(limit[:-1]) * GIB >= 1.5 * GIB


def test_register_runs_once_the_fleet_is_healthy(stack: dict[str, Any]) -> None:
    register = stack["services"]["register"]
    assert register["restart"] == "no"
    waits = {name: need["condition"] for name, need in register["depends_on"].items()}
    assert waits == {name: "service_healthy" for name in (*FLEET, "postgres")}
    script = (ROOT / "deploy" / "compose" / "register.sh").read_text()
    assert "connector create" in script and "keys create compose-admin" in script


def test_the_interpolation_follows_compose() -> None:
    env = {"SET": "a", "EMPTY": ""}
    assert interpolate("${SET} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$HOME", env) == "a d d  d $HOME"
    assert interpolate("${EMPTY?never empty-checked}", env) == ""
    for text in ("${UNSET:?needed}", "${EMPTY:?needed}", "${UNSET?needed}"):
        with pytest.raises(MissingVariableError, match="needed"):
            interpolate(text, env)
