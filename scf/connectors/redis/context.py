"""What every operation runs with (`Context`), how an operation is declared (`Operation`), small helpers.

An operation is a strict `data` model plus a coroutine taking the context and the parsed model; the
connector parses `data` and `parameters` before any I/O, then runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, JsonValue
from redis.asyncio import Redis

from scf.connectors.redis.codec import DecodeMode, encode
from scf.connectors.redis.keys import KeySpace
from scf.connectors.redis.requests import DEFAULT_PAGE, parse
from scf.schemas.configs.redis import RedisConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

M = TypeVar("M", bound=BaseModel)


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

    def page_size(self, count: int | None) -> int:
        """`count` as asked (refused above `max_items`), else the default page within `max_items`."""
        if count is None:
            return min(DEFAULT_PAGE, self.max_items)
        self.within_max_items(count, "count")
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


@dataclass(frozen=True)
class Operation:
    """One operation: `plan` parses `data` (raising INVALID_REQUEST) into a runnable; `reads` values?"""

    plan: Callable[[dict[str, Any]], Run]
    reads: bool


def operation(
    model: type[M], run: Callable[[Context, M], Awaitable[OperationOutcome]], *, reads: bool = False
) -> Operation:
    def plan(data: dict[str, Any]) -> Run:
        parsed = parse(model, data, "data")
        return lambda context: run(context, parsed)

    return Operation(plan, reads)


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
