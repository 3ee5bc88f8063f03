"""Imports flow one way (docs/architecture.md): schemas <- connectors <- worker; fleet <- roles <- app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "scf"

# package -> prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "schemas": (
        "scf.connectors",
        "scf.fleet",
        "scf.dispatcher",
        "scf.worker",
        "scf.factory",
        "aio_pika",
        "redis",
        "asyncpg",
    ),
    "connectors": ("scf.fleet", "scf.dispatcher", "scf.worker", "aio_pika", "aiormq", "pamqp", "redis"),
    "dispatcher": (
        "scf.worker",
        "scf.gateway",
        "scf.app",
        "asyncpg",
        "scf.connectors.postgresql",
        "scf.connectors.csv_ingest",
    ),
    "worker": ("scf.dispatcher", "scf.gateway", "scf.app"),
    # the shared library at the bottom: it knows no role and no composition
    "fleet": ("asyncpg", "scf.dispatcher", "scf.worker", "scf.gateway", "scf.app"),
    # the HTTP edge calls the fleet: no connector code, no factory, no other role (the registry's
    # lookup of type names and declared operations is the one door, see GATEWAY_MAY_IMPORT)
    "gateway": ("scf.connectors", "scf.factory", "scf.dispatcher", "scf.worker", "scf.app", "asyncpg"),
}

# (folder under scf/, prefix) exempt from FORBIDDEN: a connector for Redis or RabbitMQ needs its own
# driver. Those packages still may not import scf.fleet, so the fleet's own connections stay out of reach.
ALLOWED: tuple[tuple[str, str], ...] = (
    ("gateway", "scf.connectors.registry"),
    ("connectors/redis", "redis"),
    ("connectors/rabbitmq", "aio_pika"),
    ("connectors/rabbitmq", "aiormq"),
    ("connectors/rabbitmq", "pamqp"),
)


def allowed(path: Path, name: str) -> bool:
    folder = path.relative_to(PACKAGE).parent.as_posix()
    return any(
        (folder == place or folder.startswith(place + "/"))
        and (name == prefix or name.startswith(prefix + "."))
        for place, prefix in ALLOWED
    )


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in (PACKAGE / package).rglob("*.py")
        for name in imports_of(path)
        if name.startswith(FORBIDDEN[package]) and not allowed(path, name)
    ]

    assert offenders == []


def test_the_checker_sees_imports() -> None:
    # Guard against a checker that passes because it reads nothing.
    assert "scf.schemas.errors" in imports_of(PACKAGE / "connectors" / "base.py")


def test_only_the_composition_root_assembles_roles() -> None:
    roles = ("scf.dispatcher", "scf.worker", "scf.gateway")
    assemblers = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*.py")
        if len({r for r in roles for name in imports_of(path) if name.startswith(r)}) > 1
    }
    assert assemblers <= {"scf/app/runner.py", "scf/app/cli.py"}
    assert "scf/app/runner.py" in assemblers  # the checker sees the one real assembler


def test_the_driver_exemption_is_confined_to_its_own_connector() -> None:
    assert allowed(PACKAGE / "connectors" / "redis" / "connector.py", "redis.asyncio")
    assert not allowed(PACKAGE / "connectors" / "postgresql" / "connector.py", "redis")
    assert not allowed(PACKAGE / "connectors" / "redis" / "connector.py", "scf.fleet.state")


#: Shared packages under scf/connectors/ that every connector may use (they are no connector).
SHARED_CONNECTOR_PACKAGES = frozenset({"parsing", "web"})


def connector_packages() -> set[str]:
    root = PACKAGE / "connectors"
    return {
        path.parent.name
        for path in root.glob("*/__init__.py")
        if path.parent.name not in SHARED_CONNECTOR_PACKAGES
    }


def test_no_connector_package_imports_another() -> None:
    packages = connector_packages()
    assert {"csv_ingest", "pdf", "minio", "postgresql"} <= packages
    offenders = []
    for own in sorted(packages):
        for path in sorted((PACKAGE / "connectors" / own).rglob("*.py")):
            for name in imports_of(path):
                parts = name.split(".")
                if parts[:2] == ["scf", "connectors"] and len(parts) > 2:
                    other = parts[2]
                    if other in packages and other != own:
                        offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


#: The one module that owns the fleet's Redis connection (connectors for Redis open their own service's),
#: and the one that builds its client (one server or Sentinel's primary), called by the owner only.
STATE_OWNER = "scf/fleet/state.py"
CLIENT_BUILDER = "scf/fleet/redis_client.py"


def test_the_state_store_is_the_one_way_to_redis() -> None:
    opened, reached = [], []
    for path in PACKAGE.rglob("*.py"):
        where = path.relative_to(PACKAGE.parent).as_posix()
        if where.startswith("scf/connectors/redis/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ("Redis.from_url(" in line or "Redis(" in line) and where not in {STATE_OWNER, CLIENT_BUILDER}:
                opened.append(f"{where}:{number}")
            if ("redis_client.connect(" in line or "master_for(" in line) and where not in {
                STATE_OWNER,
                CLIENT_BUILDER,
            }:
                opened.append(f"{where}:{number}")
            if "state.redis" in line and line.strip() != "self.redis = state.redis  # " + STORE_NOTE:
                reached.append(f"{where}:{number}")
    assert opened == []
    assert reached == []  # a store takes the StateStore; no role reaches into its client


STORE_NOTE = "the StateStore's one connection: stores never open their own"
