"""What every operation runs with (`Context`), how a family declares its rows (`row`), small helpers.

A row names its `parameters` model (keys, channel, options), its `data` model (the payload) and a
coroutine taking the context and both parsed models; the base connector parses them (moving the old
places of fields, `data.key` and the like, through deprecated aliases) before any I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, JsonValue
from redis.asyncio import Redis

from scf.connectors.operation_table import WRITE, Alias, Call, NoData, NoParameters, Operation, Traits
from scf.connectors.redis.codec import DecodeMode, encode
from scf.connectors.redis.keys import KeySpace
from scf.connectors.redis.requests import DEFAULT_PAGE
from scf.schemas.configs.redis import RedisConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

D = TypeVar("D", bound=BaseModel)
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class Context:
    client: Redis
    keys: KeySpace
    config: RedisConfig
    decode: DecodeMode
    budget: float | None  # seconds this request may still spend waiting (blocking reads)
    socket_timeout: float
    page_token: str | None = None

    @property
    def max_items(self) -> int:
        return self.config.max_items

    def encode(self, value: JsonValue, where: str) -> bytes:
        return encode(value, where, self.config.max_value_bytes)

    def encode_all(self, values: Iterable[JsonValue], where: str) -> list[bytes]:
        return [self.encode(value, f"{where}[{i}]") for i, value in enumerate(values)]

    def page_size(self, count: int | None, what: str = "count") -> int:
        """`count` as asked (refused above `max_items`), else the default page within `max_items`."""
        if count is None:
            return min(DEFAULT_PAGE, self.max_items)
        self.within_max_items(count, what)
        return count

    def within_max_items(self, count: int, what: str) -> None:
        """Refuse a read of more than `max_items` elements (permanent LIMIT_EXCEEDED)."""
        if count > self.max_items:
            raise PermanentError(
                f"{what} is {count:,} items; this connector returns at most {self.max_items:,} "
                "per request (max_items)",
                code=ErrorCode.LIMIT_EXCEEDED,
            )


Run = Callable[[Context], Awaitable[OperationOutcome]]


class Runner(Protocol):
    """The connector, as the rows see it: runs one parsed call in a fresh `Context`."""

    async def run_in_context(self, call: Call[Any, Any], run: Run) -> OperationOutcome: ...


#: Fields of `parameters` that were never in `data` (everything else moved out of `data`).
_ALWAYS_PARAMETERS = frozenset({"decode", "page_size"})


def row(
    name: str,
    run: Callable[[Context, P, D], Awaitable[OperationOutcome]],
    parameters: type[P] = NoParameters,  # type: ignore[assignment]
    data: type[D] = NoData,  # type: ignore[assignment]
    traits: Traits = WRITE,
    summary: str = "",
    page_size_was: str | None = None,
) -> Operation[Runner]:
    """One operation's row. Every field of `parameters` (keys, channel, options) used to sit in `data`:
    each old place is a deprecated alias, and so is the old page size name (`data.<page_size_was>`)."""

    async def handler(connector: Runner, call: Call[Any, Any]) -> OperationOutcome:
        return await connector.run_in_context(call, lambda c: run(c, call.parameters, call.data))

    moved = [n for n in parameters.model_fields if n not in _ALWAYS_PARAMETERS]
    aliases = [Alias("data", n, "parameters", n) for n in moved]
    if page_size_was is not None:
        aliases.append(Alias("data", page_size_was, "parameters", "page_size"))
    return Operation(name, handler, data, parameters, traits, summary, tuple(aliases))


def done(result: dict[str, Any], *, processed: int = 0, affected: int = 0) -> OperationOutcome:
    return OperationOutcome(records_processed=processed, records_affected=affected, result_data=result)


def as_bytes(value: bytes | str) -> bytes:
    """redis-py types replies as bytes-or-str; without decode_responses they are bytes."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


def as_text(value: bytes | str | int) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))
