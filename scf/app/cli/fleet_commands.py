"""The commands that call a running fleet: connectors, operations, results, cancels, dead letters.

They need only the slim install (the client, the models, click and rich). Every one answers on stdout
in the chosen `--output` and fails with one line on stderr (errors.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scf.app.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError
from scf.app.cli.progress import OperationProgress
from scf.app.cli.session import CONTROL_TIMEOUT, TESTING_TIMEOUT, session

if TYPE_CHECKING:
    from scf.fleet.client import FleetClient


def read_bodies(path: Path) -> list[dict[str, Any]]:
    """The connector object(s) in a JSON or YAML file."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", exit_code=EXIT_USAGE) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CliError(f"{path} is not JSON or YAML: {_first_line(exc)}", exit_code=EXIT_USAGE) from None
    items = loaded if isinstance(loaded, list) else [loaded]
    if not items or not all(isinstance(item, dict) for item in items):
        raise CliError(f"{path}: expected a connector object or a list of them", exit_code=EXIT_USAGE)
    return items


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def confirm(what: str, yes: bool) -> None:
    """Ask before a destructive step; without a terminal to ask on, `--yes` is required."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"refusing to {what} without confirmation", hint="add --yes", exit_code=EXIT_USAGE)
    if not click.confirm(f"scf: {what}?", default=False, err=True):
        raise CliError("not confirmed; nothing changed", exit_code=EXIT_FAILED)


yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


# --- connectors -----------------------------------------------------------------------------------------


@click.group()
def connector() -> None:
    """Manage connectors through the fleet."""


@connector.command("create")
@click.argument("file", type=click.Path(path_type=Path))
def connector_create(file: Path) -> None:
    """Register the connector(s) in FILE (JSON or YAML: the spec's POST /connectors body, or a list).

    Each is tested on a worker; a connector created but unreachable exits 1 (see docs/cli.md)."""
    bodies = read_bodies(file)

    async def go(client: FleetClient) -> list[Any]:
        return [(await client.create_connector(body)).created for body in bodies]

    created = session().call(go, timeout=TESTING_TIMEOUT)
    session().emit(created)
    failed = [c.service_name for c in created if c.connection_ok is False]
    if failed:
        raise CliError(
            f"created, but the connection test failed for {', '.join(failed)}",
            hint="scf connector test NAME shows why",
        )


@connector.command("update")
@click.argument("file", type=click.Path(path_type=Path))
def connector_update(file: Path) -> None:
    """Replace the configuration of the connector(s) in FILE (their pool is reopened)."""
    bodies = read_bodies(file)

    async def go(client: FleetClient) -> list[Any]:
        return [await client.update_connector(body) for body in bodies]

    session().emit(session().call(go, timeout=TESTING_TIMEOUT))


@connector.command("list")
@click.option("--type", "service_type", default=None, help="Only this service type.")
def connector_list(service_type: str | None) -> None:
    """Every registered connector, with its state."""
    session().emit(session().call(lambda c: c.list_connectors(service_type)))


#: `scf connector <command> NAME`: the client call each one makes, and its help.
BY_NAME: dict[str, tuple[str, str]] = {
    "get": ("get_connector", "One connector's configuration (secrets masked) and state."),
    "status": ("connector_status", "Health, breaker and pause state of one connector."),
    "metrics": ("get_metrics", "Operation counts, latencies and pool figures of one connector."),
    "pause": ("pause_connector", "Stop taking operations for NAME (refused CONNECTOR_PAUSED until resumed)."),
    "resume": ("resume_connector", "Take operations for NAME again."),
}


def _by_name(command: str, method: str, summary: str) -> None:
    @connector.command(command, help=summary)
    @click.argument("name")
    def run(name: str) -> None:
        session().emit(session().call(lambda c: getattr(c, method)(name)))


for _command, (_method, _summary) in BY_NAME.items():
    _by_name(_command, _method, _summary)


@connector.command("test")
@click.argument("name")
def connector_test(name: str) -> None:
    """Test the connection on a worker now (exits 1 when it fails)."""
    result = session().call(lambda c: c.test_connection(name), timeout=TESTING_TIMEOUT)
    session().emit(result)
    if result.status != "success":
        raise CliError(f"{name}: the connection test failed", hint="see its error above")


@connector.command("delete")
@click.argument("name")
@yes_option
def connector_delete(name: str, yes: bool) -> None:
    """Remove NAME from the registry (its pools are closed on every worker)."""
    confirm(f"delete connector {name!r}", yes)
    session().emit(session().call(lambda c: c.delete_connector(name)))


# --- operations ------------------------------------------------------------------------------------------


def _param(values: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--param takes key=value, got {item!r}", exit_code=EXIT_USAGE)
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def read_data(data: str) -> Any:
    """`--data`: JSON text, or `@file.json`."""
    source = "--data"
    raw = data
    if data.startswith("@"):
        path = Path(data[1:])
        source = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(
                f"cannot read --data file {path}: {exc.strerror or exc}", exit_code=EXIT_USAGE
            ) from None
        except UnicodeDecodeError:
            raise CliError(f"--data file {path} is not UTF-8 text", exit_code=EXIT_USAGE) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{source} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", exit_code=EXIT_USAGE
        ) from None


def _request(
    operation: str, data: str, params: tuple[str, ...], timeout: float | None, key: str | None
) -> dict[str, Any]:
    request = {
        "operation": operation,
        "data": read_data(data),
        "parameters": _param(params),
        "timeout": timeout,
        "idempotency_key": key,
    }
    return {k: v for k, v in request.items() if v is not None}


def _request_options(command: Any) -> Any:
    for option in reversed(
        [
            click.argument("name"),
            click.argument("operation"),
            click.option("--data", "data", default="{}", help="The request's data as JSON (or @file.json)."),
            click.option(
                "--param",
                "params",
                multiple=True,
                help="A parameter as key=value (value parsed as JSON if it can be).",
            ),
            click.option("--timeout", "op_timeout", type=float, default=None, help="Deadline in seconds."),
            click.option("--idempotency-key", default=None, help="Run the effect at most once for this key."),
        ]
    ):
        command = option(command)
    return command


@click.command()
@_request_options
def call(
    name: str,
    operation: str,
    data: str,
    params: tuple[str, ...],
    op_timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Execute OPERATION on connector NAME through the fleet, wait, print the result (exit 1 if it failed)."""
    request = _request(operation, data, params, op_timeout, idempotency_key)
    deadline = op_timeout or 30.0
    with OperationProgress(f"{operation} on {name}") as shown:
        result = session().call(
            lambda c: c.execute_operation(name, request, on_progress=shown.update),
            timeout=deadline + 5.0,
            operation_timeout=deadline,
        )
        shown.finish(result.records_processed or None)
    session().emit(result)
    if not result.ok:
        error = result.error
        raise CliError(f"{error.code}: {error.message}" if error else "the operation failed")


@click.command()
@_request_options
def submit(
    name: str,
    operation: str,
    data: str,
    params: tuple[str, ...],
    op_timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Queue OPERATION on NAME and print its operation id at once; `scf result ID` fetches the result."""
    request = _request(operation, data, params, op_timeout, idempotency_key)
    operation_id = session().call(lambda c: c.submit(name, request))
    session().emit({"operation_id": operation_id, "status": "submitted"})


@click.command()
@click.argument("operation_id")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for it to finish.")
def result(operation_id: str, wait: float) -> None:
    """The stored result of an operation (kept SCF_RESULT_TTL seconds; exit 1 if it failed)."""
    found = session().call(lambda c: c.result(operation_id, wait=wait), timeout=CONTROL_TIMEOUT + wait)
    session().emit(found)
    if not found.ok:
        raise CliError(f"operation {operation_id} failed", hint="see its error above")


@click.command()
@click.argument("operation_id")
def cancel(operation_id: str) -> None:
    """Cancel an operation: not run if still queued, stopped at its next batch if running.

    An id the fleet does not know (or that is someone else's) exits 1 with NOT_FOUND."""
    answer = session().call(lambda c: c.cancel_operation(operation_id))
    session().emit(answer)


# --- dead letters ----------------------------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Dead letters: requests the fleet gave up on (list, replay to their queue, purge)."""


def _selection(
    ids: tuple[str, ...], all_: bool, service_name: str | None, reason: str | None
) -> dict[str, Any]:
    if bool(ids) == all_:
        raise CliError(
            "give dead letter ids, or --all (narrowed by --service / --reason)", exit_code=EXIT_USAGE
        )
    chosen: dict[str, Any] = {"ids": list(ids)} if ids else {"all": True}
    chosen.update({k: v for k, v in (("service_name", service_name), ("reason", reason)) if v})
    return chosen


def _described(chosen: dict[str, Any]) -> str:
    if "ids" in chosen:
        return f"{len(chosen['ids'])} dead letter(s)"
    narrowed = ", ".join(f"{k}={v}" for k, v in chosen.items() if k != "all")
    return "EVERY dead letter" + (f" with {narrowed}" if narrowed else "")


@dlq.command("list")
@click.option("--service", "service_name", default=None)
@click.option("--reason", default=None, help="delivery_limit, expired, retries_exhausted, ...")
@click.option("--limit", type=click.IntRange(1, 1000), default=100)
@click.option("--offset", type=click.IntRange(0), default=0)
def dlq_list(service_name: str | None, reason: str | None, limit: int, offset: int) -> None:
    """Dead letters, newest first."""
    query: dict[str, Any] = {"limit": limit, "offset": offset}
    query.update({k: v for k, v in (("service_name", service_name), ("reason", reason)) if v})
    session().emit(session().call(lambda c: c.dead_letters(**query)))


def _dead_letter_command(name: str, summary: str, always_ask: bool) -> None:
    """`scf dlq replay|purge IDS... | --all [--service] [--reason] [--yes]`."""

    @dlq.command(name, help=summary)
    @click.argument("ids", nargs=-1)
    @click.option("--all", "all_", is_flag=True, help="every dead letter (that matches the filters)")
    @click.option("--service", "service_name", default=None)
    @click.option("--reason", default=None)
    @yes_option
    def run(
        ids: tuple[str, ...], all_: bool, service_name: str | None, reason: str | None, yes: bool
    ) -> None:
        chosen = _selection(ids, all_, service_name, reason)
        if all_ or always_ask:
            confirm(f"{name} {_described(chosen)}", yes)
        method = "replay_dead_letters" if name == "replay" else "purge_dead_letters"
        session().emit(session().call(lambda c: getattr(c, method)(**chosen)))


_dead_letter_command(
    "replay", "Re-publish dead letters to the queue they came from (with a fresh deadline).", False
)
_dead_letter_command("purge", "Delete dead letters for good.", True)
