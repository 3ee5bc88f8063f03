"""Imports flow one way (DESIGN.md §1): schemas <- connectors <- worker; schemas <- fleet <- roles."""

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
    "connectors": ("scf.fleet", "scf.dispatcher", "scf.worker", "aio_pika", "redis"),
    "dispatcher": ("scf.worker", "asyncpg", "scf.connectors.postgresql", "scf.connectors.csv_ingest"),
    "fleet": ("asyncpg",),
}


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
        if name.startswith(FORBIDDEN[package])
    ]

    assert offenders == []


def test_the_checker_sees_imports() -> None:
    # Guard against a checker that passes because it reads nothing.
    assert "scf.schemas.errors" in imports_of(PACKAGE / "connectors" / "base.py")
