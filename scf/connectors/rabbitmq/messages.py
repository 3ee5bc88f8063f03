"""Pure message helpers: bodies in (JSON, text or base64) and out, deterministic ids, JSON-safe headers.

A published body follows the request's `data_format`: `json` (any JSON value, sent as application/json),
`text` (a string, UTF-8) or `base64` (raw bytes). A consumed body comes back parsed when its content type
is JSON, as text when it is text (or untyped) and valid UTF-8, else as base64; `body_encoding` says which.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from scf.schemas.errors import ErrorCode, PermanentError

BodyEncoding = Literal["json", "text", "base64"]
DATA_FORMATS: tuple[BodyEncoding, ...] = ("json", "text", "base64")
DEFAULT_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "base64": "application/octet-stream",
}
#: Namespace of derived message ids: the same key and position always give the same id.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c2d0e-9a4b-5c7d-8e2f-3a1b4c5d6e7f")


def check_data_format(data_format: str) -> BodyEncoding:
    for known in DATA_FORMATS:
        if data_format == known:
            return known
    raise PermanentError(
        f"data_format must be one of {', '.join(DATA_FORMATS)} for RabbitMQ messages, not {data_format!r}",
        code=ErrorCode.INVALID_REQUEST,
    )


def encode_body(value: Any, data_format: BodyEncoding, where: str) -> bytes:
    """The bytes of one message body; a value that does not fit its format is a permanent error."""
    if data_format == "json":
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError):
            raise _invalid(f"{where} is not a JSON value (NaN and Infinity are not JSON)") from None
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a string with data_format {data_format!r}")
    if data_format == "text":
        return value.encode("utf-8", errors="strict")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{where} is not valid base64") from None


def check_size(body: bytes, limit: int, where: str) -> None:
    if len(body) > limit:
        raise PermanentError(
            f"{where} is {len(body)} bytes; this connector's limit is {limit} "
            "(custom_config.max_message_bytes)",
            code=ErrorCode.LIMIT_EXCEEDED,
        )


def message_ids(key: str | None, count: int) -> list[str]:
    """One id per message: derived from `key` and the position when given (a retried or redelivered
    publish repeats its ids, so consumers can drop duplicates), else random."""
    if key is None:
        return [uuid.uuid4().hex for _ in range(count)]
    return [uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{key}\x00{index}").hex for index in range(count)]


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def is_text_type(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == "" or kind.startswith("text/")


def decode_body(body: bytes, content_type: str | None) -> tuple[Any, BodyEncoding]:
    """A body as the caller reads it. Never fails: what is not JSON or text comes back as base64."""
    if is_json_type(content_type):
        try:
            return json.loads(body), "json"
        except ValueError:
            pass
    if is_text_type(content_type) or is_json_type(content_type):
        try:
            return body.decode("utf-8"), "text"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "base64"


def jsonable(value: Any, depth: int = 0) -> Any:
    """An AMQP field value (tables, arrays, bytes, timestamps, decimals) as plain JSON."""
    if depth > 32:
        return None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


def _invalid(message: str) -> PermanentError:
    return PermanentError(message, code=ErrorCode.INVALID_DATA)
