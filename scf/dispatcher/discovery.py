"""Service discovery: connectors declared in a file, and opt-in probing of the spec's service ports.

`SCF_CONNECTORS_FILE` (JSON or YAML, one connector or a list) is registered when a dispatcher starts:
new names are created, changed ones updated, identical ones left alone. With `SCF_DISCOVERY=true` the
dispatcher also probes `SERVICE_HOST` on the spec's `*_PORT` variables and registers what answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml

from scf.connectors.registry import is_available
from scf.dispatcher.control import ControlPlane
from scf.fleet.settings import Settings
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError

log = structlog.get_logger(__name__)

#: the spec's port variables that name a network service, and the connector type that serves it
PORT_SETTINGS: dict[str, str] = {
    "postgres_output_port": "postgresql",
    "qdrant_vector_port": "qdrant",
    "elasticsearch_port": "elasticsearch",
    "minio_port": "minio",
    "rabbitmq_port": "rabbitmq",
}

Report = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    service_type: str
    host: str
    port: int

    @property
    def service_name(self) -> str:
        return f"discovered-{self.service_type}-{self.port}"

    def body(self) -> dict[str, Any]:
        return {
            "service_type": self.service_type,
            "service_name": self.service_name,
            "host": self.host,
            "port": self.port,
        }


def candidates(settings: Settings) -> list[Candidate]:
    return [
        Candidate(t, settings.service_host, int(getattr(settings, field)))
        for field, t in PORT_SETTINGS.items()
    ]


async def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def probe(settings: Settings) -> list[tuple[Candidate, bool]]:
    found = await asyncio.gather(*(answers(c.host, c.port) for c in candidates(settings)))
    return list(zip(candidates(settings), found, strict=True))


def load_file(path: Path) -> list[dict[str, Any]]:
    loaded = yaml.safe_load(path.read_text())
    items = loaded if isinstance(loaded, list) else [loaded]
    if not all(isinstance(i, dict) for i in items):
        raise PermanentError(
            f"{path}: expected a connector object or a list of them", code=ErrorCode.INVALID_CONFIG
        )
    return items


async def register(control: ControlPlane, body: dict[str, Any]) -> str:
    """Create, update if changed, or leave alone; returns what happened (or raises a typed error)."""
    connection = ServiceConnection.parse(body)
    try:
        current, _ = await control.state.load_connection(connection.service_name)
    except ConnectorError as exc:
        if exc.code == ErrorCode.SECRETS_UNREADABLE:
            # Sealed with a key this fleet no longer has: the declaration is the truth, store it anew.
            log.warning("declared_connector_replaced", service_name=connection.service_name, reason=exc.code)
            updated = await control.update(body)
            return (
                f"replaced, its stored secrets were unreadable ({updated.connector_info.connection_status})"
            )
        if exc.code != ErrorCode.CONNECTOR_NOT_FOUND:
            raise
        created = await control.create(body)
        return f"created ({created.connector_info.connection_status})"
    if current == connection:
        return "unchanged"
    updated = await control.update(body)
    return f"updated ({updated.connector_info.connection_status})"


async def register_all(control: ControlPlane, bodies: list[dict[str, Any]], report: Report) -> int:
    """Register every body; returns how many failed (each failure is reported, none stops the rest)."""
    failures = 0
    for i, body in enumerate(bodies, 1):
        name = body.get("service_name", "?")
        try:
            outcome = await register(control, body)
        except ConnectorError as exc:
            failures += 1
            report(f"connector {i}/{len(bodies)} {name}: NOT registered [{exc.code}] {exc.to_info().message}")
            continue
        report(f"connector {i}/{len(bodies)} {name}: {outcome}")
    return failures


async def discover(settings: Settings, control: ControlPlane, report: Report) -> None:
    """What a starting dispatcher registers: the connectors file, then (opt-in) what answers on the ports."""
    if settings.scf_connectors_file is not None:
        await register_all(control, load_file(settings.scf_connectors_file), report)
    if settings.scf_discovery:
        bodies = []
        for candidate, up in await probe(settings):
            if not up:
                continue
            if not is_available(candidate.service_type):
                report(
                    f"found {candidate.service_type} on :{candidate.port}; no connector for it in this build"
                )
                continue
            bodies.append(candidate.body())
        await register_all(control, bodies, report)
