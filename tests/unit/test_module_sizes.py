"""Readable units: no module of `scf/` over 400 lines, no function over 60 (issue 13's bar)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scf"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def long_functions(source: str) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method longer than the limit."""
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_module_is_over_400_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE.parent)} ({n} lines)"
        for path in modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []


def test_no_function_is_over_60_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({n} lines)"
        for path in modules()
        for name, line, n in long_functions(path.read_text())
    ]
    assert long == []


def test_the_checker_sees_long_functions() -> None:
    # Guard against a checker that passes because it measures nothing.
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def big() -> None:\n{body}\n") == [("big", 1, MAX_FUNCTION_LINES + 1)]
    assert long_functions(f"def fits() -> None:\n{body[: body.rfind(chr(10))]}\n") == []
    assert len(modules()) > 100
