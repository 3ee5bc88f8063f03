"""The commands that run fleet processes (`scf up`, `dispatcher`, `worker`, `gateway`) and `discover`.

Loaded only when one of them is invoked: they need the `fleet` extra, which the slim client lacks.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import click

from scf.app.cli.session import session
from scf.app.local_access import ensure_local_admin_key, local_policy
from scf.app.runner import Roles, progress, run, run_loop
from scf.app.supervisor import ChildSpec, default_processes, supervise
from scf.connectors.registry import available_types, is_available
from scf.dispatcher.discovery import probe
from scf.extras import split_installed
from scf.fleet.client import FleetClient
from scf.fleet.logging import configure_logging
from scf.fleet.settings import Settings
from scf.schemas.errors import ConnectorError

FLEET_IS_UP = "fleet is up; try: scf connector list   (Ctrl-C stops)"


def _settings(alert_webhook: str | None = None) -> Settings:
    settings = Settings()
    if alert_webhook is not None:
        settings = settings.model_copy(update={"scf_alert_webhook": alert_webhook})
    configure_logging(settings.scf_log_level)
    return settings


def _types(value: str | None) -> list[str]:
    """The types a worker serves: never one whose extra is missing here (it would take its requests
    and fail each); 'all' leaves those out with a line each, a named one stops the command."""
    if not value or value == "all":
        served, missing = split_installed(available_types())
        for problem in missing.values():
            progress(f"not served here: {problem}")
        return served
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = sorted(set(types) - set(available_types()))
    if unknown:
        raise click.BadParameter(f"unknown service types {unknown}; available: {available_types()}")
    if missing := split_installed(types)[1]:
        raise click.ClickException(next(iter(missing.values())))
    return types


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


@click.command()
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


@click.command()
@click.option("--alert-webhook", default=None, help="POST health changes to this URL as JSON.")
def dispatcher(alert_webhook: str | None) -> None:
    """Run a dispatcher (any number may run; RabbitMQ spreads requests; one runs the health monitor)."""
    run_loop(run(_settings(alert_webhook), Roles(dispatcher=True)))


@click.command()
def gateway() -> None:
    """Run the HTTP gateway alone (port SERVICE_CONNECTOR_FACTORY_PORT, default 8306)."""
    run_loop(run(_settings(), Roles(gateway=True)))


@click.command()
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


@click.command()
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

    session().url = settings.amqp_url
    session().call(go, timeout=60.0)
