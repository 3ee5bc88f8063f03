"""The shapes of `data` and `parameters` for each RabbitMQ operation, validated before any I/O.

What to send is `data` (`message`/`messages`, `jobs`); where and how is `parameters` (queue, exchange,
routing key, properties, page_size). Unknown keys are refused, so a misspelt option is a `permanent`
INVALID_REQUEST naming the field, never silently ignored. Queue arguments are an allowlist.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self, cast

from pamqp import encode
from pamqp.common import FieldTable
from pydantic import (
    AfterValidator,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from scf.connectors.operation_table import PageParameters, Strict
from scf.schemas.configs.rabbitmq import name_problem

MAX_HEADERS = 128
#: Encoded bytes of a headers or arguments table: well inside the 128 KiB frame RabbitMQ negotiates.
MAX_TABLE_BYTES = 64 * 1024
MAX_TABLE_KEY_BYTES = 128
INT64 = (-(2**63), 2**63 - 1)
#: The largest per-message TTL RabbitMQ accepts (milliseconds).
MAX_EXPIRATION_MS = 2**32 - 1


def _checked_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A routing key, or an exchange name where "" is the default exchange.
Name = Annotated[str, AfterValidator(_checked_name)]
#: A queue or exchange that must be named.
EntityName = Annotated[str, Field(min_length=1), AfterValidator(_checked_name)]


def _fits_shortstr(value: str) -> str:
    if len(value.encode("utf-8", errors="replace")) > 255:
        raise ValueError("is longer than 255 bytes in UTF-8 (an AMQP short string)")
    return value


ShortStr = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_fits_shortstr)]


def _check_ints(value: Any, where: str) -> None:
    """AMQP tables carry signed 64-bit integers at most, finite numbers only (RabbitMQ closes the whole
    connection with INTERNAL_ERROR on an Infinity), and keys of at most 128 bytes (pamqp cuts longer)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{where} holds an integer outside the signed 64-bit range")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds NaN or Infinity, which AMQP tables cannot carry")
    if isinstance(value, dict):
        for key, item in value.items():
            if len(str(key).encode("utf-8", errors="replace")) > MAX_TABLE_KEY_BYTES:
                raise ValueError(f"{where} has a key longer than {MAX_TABLE_KEY_BYTES} bytes")
            _check_ints(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_ints(item, f"{where}[{index}]")


def _check_table(table: dict[str, JsonValue] | None, where: str) -> dict[str, JsonValue] | None:
    """A table (headers, binding arguments) that the broker can take: checked values, and an encoded
    size that fits one frame. Larger, the broker closes the connection with FRAME_ERROR, failing every
    operation that shares it: a request error, so it is refused here, before any I/O."""
    if not table:
        return table
    for key, value in table.items():
        _check_ints(value, f"{where}.{key}")
    try:
        size = len(encode.field_table(cast(FieldTable, table)))
    except UnicodeError:
        raise ValueError(f"{where} holds text that is not valid Unicode") from None
    if size > MAX_TABLE_BYTES:
        raise ValueError(f"{where} is {size} bytes encoded; at most {MAX_TABLE_BYTES} fit a frame")
    return table


class _Properties(Strict):
    """AMQP properties shared by every message of one request."""

    headers: dict[Name, JsonValue] | None = Field(default=None, max_length=MAX_HEADERS)
    priority: int | None = Field(default=None, ge=0, le=255)
    expiration_ms: int | None = Field(default=None, ge=0, le=MAX_EXPIRATION_MS)
    correlation_id: ShortStr | None = None
    content_type: ShortStr | None = None

    @field_validator("headers")
    @classmethod
    def _headers_fit_amqp(cls, headers: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        return _check_table(headers, "headers")


class PublishData(Strict):
    """Exactly one of `message` (one body) or `messages` (a batch of bodies)."""

    message: JsonValue = None
    messages: list[JsonValue] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if ("message" in self.model_fields_set) == (self.messages is not None):
            raise ValueError("give exactly one of message (one body) or messages (a non-empty list)")
        return self

    @property
    def bodies(self) -> list[JsonValue]:
        return self.messages if self.messages is not None else [self.message]


class PublishParameters(_Properties):
    exchange: Name | None = None
    routing_key: Name = ""
    persistent: bool = True
    mandatory: bool = True
    message_id: ShortStr | None = None


class EnqueueData(Strict):
    jobs: list[JsonValue] = Field(min_length=1)


class QueueTarget(Strict):
    """Which queue: `parameters.queue` (the old `parameters.name` is a deprecated alias)."""

    queue: EntityName


class ExchangeTarget(Strict):
    exchange: EntityName


class EnqueueParameters(_Properties, QueueTarget):
    """Jobs go persistent to `queue` through the default exchange; a missing queue is created."""

    queue_type: Literal["quorum", "classic"] = "quorum"
    create: bool = True


class ConsumeParameters(QueueTarget, PageParameters):
    """Up to `page_size` messages (10 if unset; the old `max_messages` is a deprecated alias)."""

    ack: bool = True
    wait: float = Field(default=0.0, ge=0, le=300, allow_inf_nan=False)


class QueueArguments(Strict):
    """The `x-` arguments a declare may set (RabbitMQ's names); anything else is refused."""

    queue_type: Literal["classic", "quorum"] | None = Field(default=None, alias="x-queue-type")
    max_length: int | None = Field(default=None, ge=0, le=INT64[1], alias="x-max-length")
    message_ttl: int | None = Field(default=None, ge=0, le=MAX_EXPIRATION_MS, alias="x-message-ttl")
    dead_letter_exchange: Name | None = Field(default=None, alias="x-dead-letter-exchange")
    dead_letter_routing_key: Name | None = Field(default=None, alias="x-dead-letter-routing-key")
    max_priority: int | None = Field(default=None, ge=1, le=255, alias="x-max-priority")
    overflow: Literal["drop-head", "reject-publish", "reject-publish-dlx"] | None = Field(
        default=None, alias="x-overflow"
    )
    delivery_limit: int | None = Field(default=None, ge=0, le=INT64[1], alias="x-delivery-limit")

    def to_amqp(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class DeclareQueueParameters(QueueTarget):
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    arguments: QueueArguments = Field(default_factory=QueueArguments)


class DeclareExchangeParameters(ExchangeTarget):
    type: Literal["direct", "fanout", "topic", "headers"] = "direct"
    durable: bool = True
    auto_delete: bool = False


class DeleteExchangeParameters(ExchangeTarget):
    if_unused: bool = False


class DeleteQueueParameters(QueueTarget):
    if_unused: bool = False
    if_empty: bool = False


class BindParameters(Strict):
    """A queue bound to an exchange; `arguments` are the match rules of a headers exchange."""

    queue: EntityName
    exchange: EntityName
    routing_key: Name = ""
    arguments: dict[Name, JsonValue] | None = Field(default=None, max_length=MAX_HEADERS)

    @field_validator("arguments")
    @classmethod
    def _arguments_fit_amqp(cls, arguments: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        return _check_table(arguments, "arguments")
