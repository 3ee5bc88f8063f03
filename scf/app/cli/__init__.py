"""The `scf` command line: run fleet roles, manage connectors and call operations through the fleet.

`main` is a click group whose fleet-role commands (`up`, `worker`, ...) and admin commands load on
first use, so the client commands work in the slim install and `scf --help` stays fast. Output:
`--output json|yaml|table`; failures: one line with a hint (errors.py); docs/cli.md has the whole map.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click

from scf._version import __version__
from scf.app.cli.errors import EXIT_USAGE, CliError
from scf.app.cli.fleet_commands import call, cancel, connector, dlq, result, submit
from scf.app.cli.output import FORMATS
from scf.app.cli.session import Session

#: Commands loaded on first use: name -> "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "up": "scf.app.cli.roles:up",
    "dispatcher": "scf.app.cli.roles:dispatcher",
    "worker": "scf.app.cli.roles:worker",
    "gateway": "scf.app.cli.roles:gateway",
    "discover": "scf.app.cli.roles:discover",
    "keys": "scf.app.access_cli:keys",
    "broker-users": "scf.app.broker_users:broker_users",
    "docs": "scf.app.reference_cli:docs",
    "types": "scf.app.reference_cli:types",
}

#: Short help shown in `scf --help` without importing the command (and its extra) first.
LAZY_HELP: dict[str, str] = {
    "up": "Run the whole fleet: dispatcher, workers and the HTTP gateway.",
    "dispatcher": "Run a dispatcher.",
    "worker": "Run a worker for some service types.",
    "gateway": "Run the HTTP gateway alone.",
    "discover": "Probe the spec's service ports and report what answers.",
    "keys": "Manage the gateway's API keys.",
    "broker-users": "Create the RabbitMQ users of the fleet's roles.",
    "docs": "Write the OpenAPI and AsyncAPI documents and the operations table.",
    "types": "The connector types this build offers.",
}


class ScfGroup(click.Group):
    """A group whose heavy commands are imported when used; a missing extra is one line, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
        try:
            command: click.Command = getattr(import_module(module), attribute)
        except ModuleNotFoundError as exc:
            return _missing(cmd_name, exc.name or "a dependency")
        return command


def _missing(name: str, module: str) -> click.Command:
    def refuse() -> None:
        raise CliError(
            f"scf {name} needs {module}, which this install lacks",
            hint="pip install 'service-connector-factory[all]'",
            exit_code=EXIT_USAGE,
        )

    return click.Command(name, callback=refuse, help=LAZY_HELP.get(name, ""), add_help_option=False)


@click.group(cls=ScfGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", "-V", prog_name="scf", message="%(prog)s %(version)s")
@click.option(
    "--output",
    "-o",
    type=click.Choice(FORMATS),
    default=None,
    help="Answer format: json, yaml or table (default: table on a terminal, json otherwise).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=None,
    help="Seconds to wait for the fleet's reply to a control call (default 10; 60 for create/update/test).",
)
@click.option("--debug", is_flag=True, envvar="SCF_DEBUG", help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, output: Any, timeout: float | None, debug: bool) -> None:
    """Service Connector Factory: one uniform, resilient way to reach data services.

    Client commands talk to the fleet over AMQP (SCF_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/).
    """
    ctx.obj = Session(output=output, timeout=timeout, debug=debug)


main.add_command(connector)
main.add_command(call)
main.add_command(submit)
main.add_command(result)
main.add_command(cancel)
main.add_command(dlq)
