"""The `scf` command line: run fleet roles, manage connectors and call operations through the fleet."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from scf.app.access_cli import keys
from scf.app.broker_users import broker_users
from scf.app.local_access import ensure_local_admin_key, local_policy
from scf.app.reference_cli import docs, types
from scf.app.runner import Roles, progress, run, run_loop
from scf.app.supervisor import ChildSpec, default_processes, supervise
from scf.connectors.registry import available_types, is_available
from scf.dispatcher.discovery import load_file, probe
from scf.fleet.client import FleetClient
from scf.fleet.logging import configure_logging
from scf.fleet.settings import Settings
from scf.schemas.errors import ConnectorError

T = TypeVar("T")
FLEET_IS_UP = "fleet is up; try: scf connector list   (Ctrl-C stops)"


def _bodies(path: Path) -> list[dict[str, Any]]:
    try:
        return load_file(path)
    except ConnectorError as exc:
        raise click.BadParameter(exc.message) from None


def _settings(alert_webhook: str | None = None) -> Settings:
    settings = Settings()
    if alert_webhook is not None:
        settings = settings.model_copy(update={"scf_alert_webhook": alert_webhook})
    configure_logging(settings.scf_log_level)
    return settings


def _types(value: str | None) -> list[str]:
    if not value or value == "all":
        return available_types()
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = sorted(set(types) - set(available_types()))
    if unknown:
        raise click.BadParameter(f"unknown service types {unknown}; available: {available_types()}")
    return types


def _print(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    click.echo(json.dumps(value, indent=2, default=str))


def _with_client(settings: Settings, action: Callable[[FleetClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await FleetClient.connect(
            settings.amqp_url, timeout=settings.scf_default_timeout
        ) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except ConnectorError as exc:
        info = exc.to_info()
        click.echo(f"error [{info.category}/{info.code}]: {info.message}", err=True)
        sys.exit(1)


def _processes_option(role: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--processes",
        type=click.IntRange(1, 256),
        default=default_processes,
        show_default="the cores this process may use",
        envvar="SCF_PROCESSES",
        help=f"{role} processes to run under one supervisor (1: this process alone, no supervisor).",
    )


def _worker_specs(processes: int, types_: str, concurrency: int) -> list[ChildSpec]:
    args = ("worker", "--processes", "1", "--types", types_, "--concurrency", str(concurrency))
    return [ChildSpec(f"worker-{k}", "worker", args) for k in range(1, processes + 1)]


@click.group()
def main() -> None:
    """Service Connector Factory: one uniform, resilient way to reach data services."""


@main.command()
@click.option(
    "--types", "types_", default="all", help="Service types the worker serves (comma list or 'all')."
)
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1024))
@click.option(
    "--connectors",
    "connectors_file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="JSON/YAML connectors to register once the fleet is up (default: SCF_CONNECTORS_FILE).",
)
@click.option("--gateway/--no-gateway", default=True, show_default=True, help="Also serve the HTTP gateway.")
@click.option("--alert-webhook", default=None, help="POST health changes to this URL as JSON.")
@_processes_option("Worker")
def up(
    types_: str,
    concurrency: int,
    connectors_file: Path | None,
    gateway: bool,
    alert_webhook: str | None,
    processes: int,
) -> None:
    """Run the whole fleet: dispatcher, workers for every type and the HTTP gateway.

    With --processes 1 everything runs in this one process. With N > 1 a supervisor runs N worker
    processes (where the operations run), then one dispatcher and one gateway process (the control
    plane and the HTTP door: one each is enough, and the gateway owns one port).
    """
    settings = local_policy(_settings(alert_webhook))
    if connectors_file is not None:
        settings = settings.model_copy(update={"scf_connectors_file": connectors_file})
    if gateway:
        asyncio.run(ensure_local_admin_key(settings))
    worker_types = _types(types_)
    if processes > 1:
        control_env: dict[str, str] = {}
        if settings.scf_connectors_file is not None:
            control_env["SCF_CONNECTORS_FILE"] = str(Path(settings.scf_connectors_file).resolve())
        if settings.scf_alert_webhook:
            control_env["SCF_ALERT_WEBHOOK"] = settings.scf_alert_webhook
        control = [ChildSpec("dispatcher", "dispatcher", ("dispatcher",), control_env)]
        if gateway:
            control.append(ChildSpec("gateway", "gateway", ("gateway",)))
            port = settings.service_connector_factory_port
            progress(f"gateway will listen on {settings.scf_gateway_host}:{port}")
        # workers first: connectors registered at dispatcher start are tested by a live worker
        waves = [_worker_specs(processes, ",".join(worker_types), concurrency), control]
        code = supervise(
            waves,
            metrics_port=settings.scf_metrics_port,
            grace=settings.scf_shutdown_grace,
            ready_note=FLEET_IS_UP,
        )
        sys.exit(code)

    async def on_ready() -> None:
        progress(FLEET_IS_UP)

    roles = Roles(dispatcher=True, worker_types=worker_types, concurrency=concurrency, gateway=gateway)
    run_loop(run(settings, roles, on_ready=on_ready))


@main.command()
@click.option("--alert-webhook", default=None, help="POST health changes to this URL as JSON.")
def dispatcher(alert_webhook: str | None) -> None:
    """Run a dispatcher (any number may run; RabbitMQ spreads requests; one runs the health monitor)."""
    run_loop(run(_settings(alert_webhook), Roles(dispatcher=True)))


@main.command()
def gateway() -> None:
    """Run the HTTP gateway alone (port SERVICE_CONNECTOR_FACTORY_PORT, default 8306)."""
    run_loop(run(_settings(), Roles(gateway=True)))


@main.command()
@click.option("--types", "types_", default="all", help="Service types to serve (comma list or 'all').")
@click.option(
    "--concurrency", default=16, show_default=True, type=click.IntRange(1, 1024), help="Per process."
)
@_processes_option("Worker")
def worker(types_: str, concurrency: int, processes: int) -> None:
    """Run a worker for some service types (N processes under one supervisor with --processes N)."""
    settings = _settings()
    worker_types = _types(types_)
    if processes > 1:
        specs = _worker_specs(processes, ",".join(worker_types), concurrency)
        code = supervise([specs], metrics_port=settings.scf_metrics_port, grace=settings.scf_shutdown_grace)
        sys.exit(code)
    run_loop(run(settings, Roles(worker_types=worker_types, concurrency=concurrency)))


@main.group()
def connector() -> None:
    """Manage connectors through the fleet."""


@connector.command("create")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
def connector_create(file: Path) -> None:
    """Register the connector(s) in FILE (JSON or YAML)."""
    bodies = _bodies(file)

    async def go(client: FleetClient) -> list[Any]:
        return [(await client.create_connector(b)).created for b in bodies]

    _print(_with_client(_settings(), go))


@connector.command("list")
@click.option("--type", "service_type", default=None)
def connector_list(service_type: str | None) -> None:
    _print(_with_client(_settings(), lambda c: c.list_connectors(service_type)))


@connector.command("get")
@click.argument("name")
def connector_get(name: str) -> None:
    _print(_with_client(_settings(), lambda c: c.get_connector(name)))


@connector.command("delete")
@click.argument("name")
def connector_delete(name: str) -> None:
    _with_client(_settings(), lambda c: c.delete_connector(name))
    click.echo(f"deleted {name}")


@connector.command("test")
@click.argument("name")
def connector_test(name: str) -> None:
    _print(_with_client(_settings(), lambda c: c.test_connection(name)))


@connector.command("metrics")
@click.argument("name")
def connector_metrics(name: str) -> None:
    _print(_with_client(_settings(), lambda c: c.get_metrics(name)))


@main.command()
@click.argument("operation_id")
def cancel(operation_id: str) -> None:
    """Cancel an operation: not run if still queued, stopped at its next batch if running."""
    _print(_with_client(_settings(), lambda c: c.cancel_operation(operation_id)))


@main.group()
def dlq() -> None:
    """Dead letters: requests the fleet gave up on (list, replay to their queue, purge)."""


def _selection(
    ids: tuple[str, ...], all_: bool, service_name: str | None, reason: str | None
) -> dict[str, Any]:
    if bool(ids) == all_:
        raise click.UsageError("give dead letter ids, or --all (narrowed by --service / --reason)")
    chosen: dict[str, Any] = {"ids": list(ids)} if ids else {"all": True}
    chosen.update({k: v for k, v in (("service_name", service_name), ("reason", reason)) if v})
    return chosen


@dlq.command("list")
@click.option("--service", "service_name", default=None)
@click.option("--reason", default=None, help="delivery_limit, expired, retries_exhausted, ...")
@click.option("--limit", type=int, default=100)
@click.option("--offset", type=int, default=0)
def dlq_list(service_name: str | None, reason: str | None, limit: int, offset: int) -> None:
    query: dict[str, Any] = {"limit": limit, "offset": offset}
    query.update({k: v for k, v in (("service_name", service_name), ("reason", reason)) if v})
    _print(_with_client(_settings(), lambda c: c.dead_letters(**query)))


@dlq.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="every dead letter (that matches the filters)")
@click.option("--service", "service_name", default=None)
@click.option("--reason", default=None)
def dlq_replay(ids: tuple[str, ...], all_: bool, service_name: str | None, reason: str | None) -> None:
    """Re-publish dead letters to the queue they came from (with a fresh deadline)."""
    chosen = _selection(ids, all_, service_name, reason)
    _print(_with_client(_settings(), lambda c: c.replay_dead_letters(**chosen)))


@dlq.command("purge")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="every dead letter (that matches the filters)")
@click.option("--service", "service_name", default=None)
@click.option("--reason", default=None)
def dlq_purge(ids: tuple[str, ...], all_: bool, service_name: str | None, reason: str | None) -> None:
    chosen = _selection(ids, all_, service_name, reason)
    _print(_with_client(_settings(), lambda c: c.purge_dead_letters(**chosen)))


def _param(values: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"--param takes key=value, got {item!r}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


@main.command()
@click.argument("name")
@click.argument("operation")
@click.option("--data", "data", default="{}", help="The request's data object as JSON (or @file.json).")
@click.option(
    "--param", "params", multiple=True, help="A parameter as key=value (value parsed as JSON if it can be)."
)
@click.option("--timeout", type=float, default=None, help="Deadline in seconds.")
@click.option("--idempotency-key", default=None)
def call(
    name: str,
    operation: str,
    data: str,
    params: tuple[str, ...],
    timeout: float | None,
    idempotency_key: str | None,
) -> None:
    """Execute OPERATION on connector NAME through the fleet and print the result."""
    raw = Path(data[1:]).read_text() if data.startswith("@") else data
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"--data is not JSON: {exc}") from None
    request = {
        "operation": operation,
        "data": body,
        "parameters": _param(params),
        "timeout": timeout,
        "idempotency_key": idempotency_key,
    }
    request = {k: v for k, v in request.items() if v is not None}
    progress(f"calling {operation} on {name} ...")

    def show(update: dict[str, Any]) -> None:
        click.echo(f"\rscf: records done: {update.get('records_done', '?')}", err=True, nl=False)

    result = _with_client(_settings(), lambda c: c.execute_operation(name, request, on_progress=show))
    _print(result)
    sys.exit(0 if result.ok else 1)


@main.command()
@click.option("--register", is_flag=True, help="Register what answers (through the fleet).")
def discover(register: bool) -> None:
    """Probe SERVICE_HOST on the spec's service ports (*_PORT variables) and report what answers."""
    settings = _settings()
    found = asyncio.run(probe(settings))
    for candidate, up in found:
        state = "answers" if up else "no answer"
        available = "" if is_available(candidate.service_type) else " (no connector in this build)"
        click.echo(f"{candidate.service_type:<14} {candidate.host}:{candidate.port:<6} {state}{available}")
    if not register:
        return
    bodies = [c.body() for c, up in found if up and is_available(c.service_type)]

    async def go(client: FleetClient) -> None:
        for i, body in enumerate(bodies, 1):
            try:
                created = await client.create_connector(body)
                status = created.created.connector_info.connection_status
                progress(f"registered {i}/{len(bodies)}: {body['service_name']} ({status})")
            except ConnectorError as exc:
                progress(f"not registered {i}/{len(bodies)}: {body['service_name']} [{exc.code}]")

    _with_client(settings, go)


main.add_command(docs)
main.add_command(keys)
main.add_command(types)
main.add_command(broker_users)
