"""How JSON values become Redis bytes and back: one rule for every operation of the connector.

Writes: a string is stored as its UTF-8 bytes; a number as its decimal text (so INCR, HINCRBY and scores
agree with it); true/false/null, objects and arrays as compact JSON text; `{"$base64": "..."}` as the raw
bytes it encodes. Reads (`parameters.decode`): "text" (default) gives strings, "json" parses JSON text and
gives what is not JSON as text. Bytes that are not UTF-8 come back as `{"$base64": "..."}`, never an error.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Literal

from pydantic import JsonValue

from scf.schemas.errors import ErrorCode, PermanentError

BINARY_MARKER = "$base64"
#: Prefix of a hash field name (a JSON object key) that is not UTF-8.
BINARY_NAME_PREFIX = "$base64:"

DecodeMode = Literal["text", "json"]
Decoded = str | dict[str, str]


def encode(value: JsonValue, where: str, limit: int) -> bytes:
    """The bytes stored for `value`; a permanent error names `where` when it cannot be stored."""
    if isinstance(value, str):
        raw = _utf8(value, where)
    elif isinstance(value, bool) or value is None:
        raw = json.dumps(value).encode()
    elif isinstance(value, int):
        raw = str(value).encode()
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PermanentError(f"{where} is not a finite number", code=ErrorCode.INVALID_DATA)
        raw = repr(value).encode()
    elif isinstance(value, dict) and set(value) == {BINARY_MARKER}:
        raw = _from_base64(value[BINARY_MARKER], where)
    else:
        raw = encode_json(value, where)
    check_size(raw, where, limit)
    return raw


def encode_json(value: JsonValue, where: str) -> bytes:
    """Compact JSON text (what sessions store for every field, whatever its type)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise PermanentError(
            f"{where} holds a number that is not finite", code=ErrorCode.INVALID_DATA
        ) from None
    return _utf8(text, where)


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800") is valid JSON but not Unicode text
        raise PermanentError(f"{where} is not valid Unicode text", code=ErrorCode.INVALID_DATA) from None


def check_size(raw: bytes, where: str, limit: int) -> None:
    if len(raw) > limit:
        raise PermanentError(
            f"{where} is {len(raw):,} bytes; this connector stores at most {limit:,} (max_value_bytes)",
            code=ErrorCode.LIMIT_EXCEEDED,
        )


def _from_base64(text: JsonValue, where: str) -> bytes:
    if not isinstance(text, str):
        raise PermanentError(f"{where}.{BINARY_MARKER} must be a string", code=ErrorCode.INVALID_DATA)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError(
            f"{where}.{BINARY_MARKER} is not valid base64", code=ErrorCode.INVALID_DATA
        ) from None


def decode_text(raw: bytes) -> Decoded:
    """UTF-8 text, or the explicit binary marker for bytes that are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {BINARY_MARKER: base64.b64encode(raw).decode("ascii")}


def decode(raw: bytes | None, mode: DecodeMode) -> JsonValue:
    """A stored value as the caller sees it (None stays None: the key or field is missing)."""
    if raw is None:
        return None
    text = decode_text(raw)
    if isinstance(text, dict):
        return {BINARY_MARKER: text[BINARY_MARKER]}
    return text if mode == "text" else parse_json(text)


def parse_json(text: str) -> JsonValue:
    """JSON text parsed, or the text itself when it is not JSON."""
    try:
        parsed: JsonValue = json.loads(text)
    except ValueError:  # json.JSONDecodeError is one, and so is "Out of range float values"
        return text
    return parsed


def decode_name(raw: bytes) -> str:
    """A hash field or stream field name as a JSON object key: `$base64:...` when it is not UTF-8."""
    text = decode_text(raw)
    return text if isinstance(text, str) else BINARY_NAME_PREFIX + text[BINARY_MARKER]


def decode_many(raws: list[bytes | None], mode: DecodeMode) -> list[JsonValue]:
    return [decode(raw, mode) for raw in raws]


def decode_mapping(raw: dict[bytes, bytes], mode: DecodeMode) -> dict[str, JsonValue]:
    return {decode_name(name): decode(value, mode) for name, value in raw.items()}
