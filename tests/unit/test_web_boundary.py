"""The guarded HTTP fetch is a shared module: nothing outside the API connector reaches into it, and the
shared package depends on no connector."""

from __future__ import annotations

import ast
from pathlib import Path

SCF = Path(__file__).resolve().parents[2] / "scf"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_nothing_outside_the_api_connector_imports_it() -> None:
    api = SCF / "connectors" / "api"
    offenders = [
        str(path.relative_to(SCF))
        for path in SCF.rglob("*.py")
        if api not in path.parents
        and any(
            m == "scf.connectors.api" or m.startswith("scf.connectors.api.") for m in imported_modules(path)
        )
    ]
    assert offenders == []


def test_the_shared_web_package_imports_no_connector() -> None:
    allowed = ("scf.connectors.web", "scf.connectors.base", "scf.connectors.operation_table")
    for path in (SCF / "connectors" / "web").rglob("*.py"):
        connectors = {m for m in imported_modules(path) if m.startswith("scf.connectors.")}
        assert {m for m in connectors if not m.startswith(allowed)} == set(), path.name
