"""The request convention as documents, generated from the connectors' operation tables.

`docs/operations.md` shows every connector's operations in one table (what goes in `parameters`, what
in `data`, the traits, the aliases), and CHANGELOG.md lists every deprecated alias between two marker
lines. Both are written from the same `Operation` rows the connectors run, so they cannot drift: a test
compares the files with what this module writes. `python -m scf.app.reference [ROOT]` rewrites both.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from scf.connectors.operation_table import Alias, Operation
from scf.connectors.registry import available_types, connector_class

ALIASES_START = "<!-- deprecated-aliases:start (generated: python -m scf.app.reference) -->"
ALIASES_END = "<!-- deprecated-aliases:end -->"
#: What an empty cell shows.
NONE = "-"

PREAMBLE = """# Operations: one request convention for every connector

Generated from the connectors' operation tables (`python -m scf.app.reference`); do not edit by hand.

- **`parameters`** names what an operation acts on and how: the table, index, collection, queue,
  exchange, bucket key or endpoint, the query, filters, options and the page size.
- **`data`** carries the payload: records or rows, documents, vectors and their metadata, messages,
  object bodies, the file to ingest (`file_data`, `object` or `url`), values to store.
- **Paging** is the same everywhere: `parameters.page_size` and the request's `page_token` in,
  `next_page_token` out; only operations with the `pages` trait accept a `page_token`.
- **Traits**: `reads` (changes nothing: may run on a read-only failover host), `writes`, `idempotent`
  (running it twice leaves what running it once leaves), `long_running` (reports progress, honours
  cancel), `pages`.
- **Aliases** move an old or spec-given field to its place before the request is parsed. Accepted
  aliases are the spec's own example shapes; deprecated ones log `deprecated_request_field` once per
  process and are listed in CHANGELOG.md. Giving an alias and its target together is refused.

A field marked `?` is optional. The JSON Schemas of every model are published by `GET /connector-types`
and in the AsyncAPI document.

| type | operation | parameters | data | traits | aliases |
|---|---|---|---|---|---|
"""


def _fields(model: type[BaseModel]) -> str:
    names = [
        f"`{field.alias or name}`" + ("" if field.is_required() else "?")
        for name, field in model.model_fields.items()
    ]
    return ", ".join(names) or NONE


def _traits(operation: Operation[Any]) -> str:
    return ", ".join(name for name, on in operation.traits.as_dict().items() if on) or NONE


def _alias(alias: Alias) -> str:
    kind = "deprecated" if alias.deprecated else "accepted"
    return f"`{alias.shown}` → `{alias.target}.{alias.to}` ({kind})"


def tables() -> dict[str, dict[str, Operation[Any]]]:
    return {t: dict(connector_class(t).operation_table) for t in available_types()}


def operations_page() -> str:
    rows = [
        f"| `{service_type}` | `{name}` | {_fields(op.parameters)} | {_fields(op.data)} | {_traits(op)} "
        f"| {'; '.join(_alias(a) for a in op.aliases) or NONE} |"
        for service_type, operations in tables().items()
        for name, op in operations.items()
    ]
    return PREAMBLE + "\n".join(rows) + "\n"


def type_listing(service_type: str | None = None) -> list[str]:
    """`scf types`: one line per operation (traits, then what goes in parameters and in data)."""
    chosen = tables() if service_type is None else {service_type: tables()[service_type]}
    lines: list[str] = []
    for name, operations in chosen.items():
        lines.append(name)
        lines += [
            f"  {op_name:<18} [{_traits(op)}]  parameters: {_fields(op.parameters)}  data: {_fields(op.data)}"
            for op_name, op in operations.items()
        ]
    return [line.replace("`", "") for line in lines]


def deprecated_aliases() -> str:
    """The changelog's list: one line per deprecated alias, `<type> <operation>: <old> -> <new>`."""
    lines = [
        f"- {service_type} {name}: {alias.shown} -> {alias.target}.{alias.to}"
        for service_type, operations in tables().items()
        for name, op in operations.items()
        for alias in op.aliases
        if alias.deprecated
    ]
    return "\n".join(lines) + "\n"


def with_aliases(changelog: str) -> str:
    """The changelog with its generated block (between the markers) replaced by the current list."""
    start, end = changelog.find(ALIASES_START), changelog.find(ALIASES_END)
    if start < 0 or end < start:
        raise ValueError("CHANGELOG.md has no deprecated-aliases markers")
    return changelog[: start + len(ALIASES_START)] + "\n" + deprecated_aliases() + changelog[end:]


def write(root: Path) -> list[Path]:
    """Rewrite docs/operations.md and CHANGELOG.md's alias block under `root`; the paths written."""
    page = root / "docs" / "operations.md"
    page.write_text(operations_page())
    changelog = root / "CHANGELOG.md"
    changelog.write_text(with_aliases(changelog.read_text()))
    return [page, changelog]


if __name__ == "__main__":  # pragma: no cover - a developer's command
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(f"wrote {path}")
