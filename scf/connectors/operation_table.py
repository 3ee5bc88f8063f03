"""Operations declared as data: one table per connector, parsed and dispatched by the base class.

Each connector lists its operations as `Operation` rows: the name, the `data` model (the payload:
records, documents, vectors, messages, object bodies, file data), the `parameters` model (what the
operation acts on and how: table, index, collection, queue, key, page size, options), the handler, and
its `Traits`. `ServiceConnector.execute` looks the row up, moves aliased fields into place (`Alias`),
validates both models before any I/O and calls the handler with a `Call`; no connector parses `data` or
`parameters` by hand. The gateway, the AsyncAPI document, failover, authorization and the CLI read the
same rows (`describe`).

One request convention for every connector (docs/operations.md):
- `parameters` names the target and the options; `data` carries the payload.
- Paging: `parameters.page_size` and the request's `page_token` in, `next_page_token` out; only
  operations whose traits say `pages` accept a `page_token`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import structlog
from pydantic import BaseModel, Field

from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest
from scf.schemas.validation import Strict, parse_model

log = structlog.get_logger(__name__)

D = TypeVar("D", bound=BaseModel)
P = TypeVar("P", bound=BaseModel)
C = TypeVar("C")

#: The largest `page_size` any connector accepts; a connector's own `max_items` may be lower.
MAX_PAGE_SIZE = 10_000


class NoData(Strict):
    """`data` of an operation that takes no payload."""


class NoParameters(Strict):
    """`parameters` of an operation that takes no target or options."""


class PageParameters(Strict):
    """What every paged operation's `parameters` model includes (the one paging vocabulary)."""

    page_size: int | None = Field(
        default=None, ge=1, le=MAX_PAGE_SIZE, description="items per page (the connector's default if unset)"
    )


@dataclass(frozen=True)
class Traits:
    """What callers and the fleet may rely on about an operation.

    - `reads`: changes nothing in the service (may run on a read-only failover host; claims run
      concurrently).
    - `writes`: changes the service's data or structure.
    - `idempotent`: running it twice leaves the service as running it once (safe to retry or replay).
    - `long_running`: may run for minutes (ingestion to a sink): reports progress, honours cancel.
    - `pages`: takes `parameters.page_size` and `page_token`, answers `next_page_token`.
    """

    reads: bool = False
    writes: bool = False
    idempotent: bool = False
    long_running: bool = False
    pages: bool = False

    def __post_init__(self) -> None:
        if self.reads and self.writes:
            raise ValueError("an operation either reads or writes, not both")

    def as_dict(self) -> dict[str, bool]:
        return {
            "reads": self.reads,
            "writes": self.writes,
            "idempotent": self.idempotent,
            "long_running": self.long_running,
            "pages": self.pages,
        }


#: The traits most rows use.
READ = Traits(reads=True, idempotent=True)
PAGED_READ = Traits(reads=True, idempotent=True, pages=True)
WRITE = Traits(writes=True)
IDEMPOTENT_WRITE = Traits(writes=True, idempotent=True)

Place = Literal["data", "parameters"]


@dataclass(frozen=True)
class Alias:
    """An old or spec-given place of a field, moved to its place in the convention before parsing.

    `deprecated` aliases log once per process (connector type, operation, alias) and are listed in
    CHANGELOG.md; the spec's own example shapes are accepted aliases (`deprecated=False`). Giving both
    the alias and its target is a `permanent` INVALID_REQUEST, never a silent choice.
    """

    source: Place
    name: str
    target: Place
    to: str
    deprecated: bool = True

    @property
    def shown(self) -> str:
        return f"{self.source}.{self.name}"


@dataclass(frozen=True)
class Call(Generic[D, P]):
    """What a handler receives: the parsed `data` and `parameters` and the request they came in."""

    data: D
    parameters: P
    request: OperationRequest

    @property
    def page_token(self) -> str | None:
        return self.request.page_token


Handler = Callable[[C, Call[Any, Any]], Awaitable[OperationOutcome]]


@dataclass(frozen=True)
class Operation(Generic[C]):
    """One row of a connector's operation table."""

    name: str
    handler: Callable[[C, Call[Any, Any]], Awaitable[OperationOutcome]]
    data: type[BaseModel] = NoData
    parameters: type[BaseModel] = NoParameters
    traits: Traits = field(default_factory=Traits)
    summary: str = ""
    aliases: tuple[Alias, ...] = ()

    def __post_init__(self) -> None:
        if self.traits.pages and not issubclass(self.parameters, PageParameters):
            raise TypeError(f"{self.name}: a paged operation's parameters must extend PageParameters")

    def parse(self, request: OperationRequest, service_type: str) -> Call[Any, Any]:
        """Validate `data` and `parameters` (aliases moved first); `permanent` INVALID_REQUEST if bad."""
        if request.page_token is not None and not self.traits.pages:
            raise PermanentError(
                f"{self.name} does not page: page_token is only for paged operations",
                code=ErrorCode.INVALID_REQUEST,
            )
        data, parameters = request.data, request.parameters
        if self.aliases:
            data, parameters = apply_aliases(self, service_type, data, parameters)
        return Call(
            data=parse_model(self.data, data, "data"),
            parameters=parse_model(self.parameters, parameters, "parameters"),
            request=request,
        )

    def describe(self) -> dict[str, Any]:
        """The row as published by `GET /connector-types` and the AsyncAPI document."""
        return {
            "name": self.name,
            "summary": self.summary,
            "traits": self.traits.as_dict(),
            "data_schema": self.data.model_json_schema(),
            "parameters_schema": self.parameters.model_json_schema(),
            "aliases": [
                {"from": alias.shown, "to": f"{alias.target}.{alias.to}", "deprecated": alias.deprecated}
                for alias in self.aliases
            ],
        }


_WARNED: set[tuple[str, str, str]] = set()


def apply_aliases(
    operation: Operation[Any], service_type: str, data: dict[str, Any], parameters: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`data` and `parameters` with every aliased field moved to its place (copies; inputs untouched)."""
    places: dict[Place, dict[str, Any]] = {"data": data, "parameters": parameters}
    copied: set[Place] = set()
    for alias in operation.aliases:
        source = places[alias.source]
        if alias.name not in source:
            continue
        target = places[alias.target]
        if alias.to in target:
            raise PermanentError(
                f"{alias.shown} and {alias.target}.{alias.to} are the same field; give only "
                f"{alias.target}.{alias.to}",
                code=ErrorCode.INVALID_REQUEST,
            )
        for place in {alias.source, alias.target} - copied:
            places[place] = dict(places[place])
            copied.add(place)
        source, target = places[alias.source], places[alias.target]
        target[alias.to] = source.pop(alias.name)
        if alias.deprecated:
            _warn_once(service_type, operation.name, alias)
    return places["data"], places["parameters"]


def _warn_once(service_type: str, operation: str, alias: Alias) -> None:
    marker = (service_type, operation, alias.shown)
    if marker in _WARNED:
        return
    _WARNED.add(marker)
    log.warning(
        "deprecated_request_field",
        service_type=service_type,
        operation=operation,
        field=alias.shown,
        use=f"{alias.target}.{alias.to}",
    )


def table(*rows: Operation[C] | Iterable[Operation[C]]) -> Mapping[str, Operation[C]]:
    """The operation table from rows (or groups of rows); a name declared twice is a bug."""
    merged: dict[str, Operation[C]] = {}
    for row in rows:
        for operation in (row,) if isinstance(row, Operation) else row:
            if operation.name in merged:
                raise RuntimeError(f"operation {operation.name!r} declared twice")
            merged[operation.name] = operation
    return merged


__all__ = [
    "IDEMPOTENT_WRITE",
    "MAX_PAGE_SIZE",
    "PAGED_READ",
    "READ",
    "WRITE",
    "Alias",
    "Call",
    "NoData",
    "NoParameters",
    "Operation",
    "PageParameters",
    "Strict",
    "Traits",
    "apply_aliases",
    "table",
]
