"""Every `scf` command line the deploy files run parses with the real CLI (a misspelt option such as
`--type` would otherwise surface only when a container starts), and every worker command names only
service types the registry knows."""

from __future__ import annotations

import shlex
from typing import Any

import click
import pytest
import yaml

from scf.app.cli import main
from scf.connectors.registry import available_types
from tests.deploy.test_kubernetes import K8S, build
from tests.deploy.tools import ROOT


def compose_commands() -> dict[str, list[str]]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {}
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and command[:2] == ["sh", "-c"]:
            command = shlex.split(command[2].split(">")[0])  # the redirection is the shell's
        if isinstance(command, list) and command and command[0] == "scf":
            commands[f"compose:{name}"] = [str(part) for part in command]
    return commands


def kubernetes_commands() -> dict[str, list[str]]:
    commands = {}
    for overlay in ("dev", "production"):
        for document in build(K8S / "overlays" / overlay):
            if document["kind"] == "Deployment":
                for container in document["spec"]["template"]["spec"]["containers"]:
                    commands[f"{overlay}:{document['metadata']['name']}"] = [
                        str(a) for a in container["args"]
                    ]
    return commands


def parse(argv: list[str]) -> click.Context:
    """The context the real CLI builds for `argv` (options checked, nothing run); no group options."""
    assert argv[0] == "scf"
    group_context = click.Context(main, info_name="scf")
    command = main.get_command(group_context, argv[1])
    assert command is not None, argv[1]
    return command.make_context(argv[1], argv[2:], parent=group_context)


COMMANDS = {**compose_commands(), **kubernetes_commands()}


def test_the_deploy_files_run_the_expected_commands() -> None:
    roles = {where.split(":")[1] for where in COMMANDS}
    assert {"broker-users", "dispatcher", "gateway", "worker-light", "worker-pdf"} <= roles
    assert {"scf-dispatcher", "scf-gateway", "scf-worker-light", "scf-worker-pdf"} <= roles


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_every_command_parses_with_the_real_cli(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCF_RABBITMQ_ADMIN_PASSWORD", "from-the-environment")  # as compose gives it
    context = parse(COMMANDS[where])
    if "types_" in context.params:
        assert set(str(context.params["types_"]).split(",")) <= set(available_types())


def test_a_misspelt_option_is_refused() -> None:
    """Negative control."""
    with pytest.raises(click.UsageError, match="--type"):
        parse(["scf", "worker", "--type", "pdf"])
