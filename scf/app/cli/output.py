"""How a command's answer is shown: `--output json|yaml|table` (a table on a terminal, JSON otherwise).

Answers go to stdout and always end with a newline; progress and failures go to stderr, so
`scf ... --output json | jq` sees only the answer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import click
from pydantic import BaseModel

Format = Literal["json", "yaml", "table"]
FORMATS: tuple[Format, ...] = ("json", "yaml", "table")

#: A cell longer than this is cut in a table (the JSON and YAML outputs are never cut).
MAX_CELL = 80


def default_format() -> Format:
    return "table" if sys.stdout.isatty() else "json"


def plain(value: Any) -> Any:
    """Models and lists of models as JSON-ready data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def say(text: str) -> None:
    """A step for the person at the terminal, on stderr."""
    click.echo(f"scf: {text}", err=True)


def emit(value: Any, fmt: Format | None = None) -> None:
    data = plain(value)
    chosen = fmt or default_format()
    if chosen == "json":
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    elif chosen == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n"))
    else:
        _table(data)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _table(data: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    rows = _rows(data)
    if rows is None:
        console.print(_cell(data), markup=False, highlight=False)
        return
    table = Table(show_header=True, header_style="bold")
    columns = rows[0]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows[1:]:
        table.add_row(*row)
    console.print(table)


def _rows(data: Any) -> list[list[str]] | None:
    """Header then rows: objects by their keys, one object as key/value pairs, a page by its list."""
    if isinstance(data, Mapping):
        lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)]
        if len(lists) == 1 and all(
            not isinstance(v, list | Mapping) for k, v in data.items() if k != lists[0]
        ):
            return _rows(data[lists[0]])
        return [["field", "value"], *([str(k), _cell(v)] for k, v in data.items())]
    if isinstance(data, Sequence) and not isinstance(data, str):
        if not data:
            return [["(none)"]]
        if all(isinstance(item, Mapping) for item in data):
            columns: list[str] = []
            for item in data:
                columns.extend(k for k in item if k not in columns)
            return [columns, *([_cell(item.get(c, "")) for c in columns] for item in data)]
        return [["value"], *([_cell(item)] for item in data)]
    return None
