"""Pure shaping of object bodies and headers: request payloads to bytes, bytes to reply text, header checks.

A put body arrives as exactly one of `data.text`, `data.base64` or `data.json`; a get reply carries the
bytes as base64 (default) or UTF-8 text. User metadata and content types are checked to be header-safe
before they reach the SDK, so a value can never smuggle a second header or an `x-amz-*` directive.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from scf.schemas.errors import ErrorCode, PermanentError

Encoding = Literal["base64", "text"]

#: S3 keeps at most 2 KiB of user metadata per object (names and values together).
MAX_METADATA_BYTES = 2048
USER_METADATA_HEADER = "x-amz-meta-"

_META_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Printable ASCII without leading or trailing blanks (HTTP would trim them and change the value).
_META_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?")
_MEDIA_WORD = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(
    rf"{_MEDIA_WORD}/{_MEDIA_WORD}(\s*;\s*{_MEDIA_WORD}=({_MEDIA_WORD}|\"[\x20\x21\x23-\x5b\x5d-\x7e]*\"))*"
)
MAX_CONTENT_TYPE_CHARS = 255

DEFAULT_CONTENT_TYPES: dict[str, str] = {
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "base64": "application/octet-stream",
}


@dataclass(frozen=True)
class Body:
    """The bytes to store and the content type they get unless the caller names one."""

    content: bytes
    default_content_type: str


def text_body(text: str, limit: int) -> Body:
    if len(text) > limit:  # every character is at least one byte
        raise too_large("data.text", len(text), limit)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise PermanentError("data.text is not valid Unicode", code=ErrorCode.INVALID_DATA) from None
    return Body(_within(raw, "data.text", limit), DEFAULT_CONTENT_TYPES["text"])


def base64_body(text: str, limit: int) -> Body:
    """Strict base64 (whitespace allowed); refused before decoding when the result cannot fit."""
    compact = "".join(text.split())
    if len(compact) // 4 * 3 > limit + 2:
        raise too_large("data.base64", len(compact) // 4 * 3, limit)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError("data.base64 is not valid base64", code=ErrorCode.INVALID_DATA) from None
    return Body(_within(raw, "data.base64", limit), DEFAULT_CONTENT_TYPES["base64"])


def json_body(value: Any, limit: int) -> Body:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # NaN/Infinity or a non-JSON value handed in-process
        raise PermanentError("data.json is not representable as JSON", code=ErrorCode.INVALID_DATA) from None
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise PermanentError("data.json is not valid Unicode", code=ErrorCode.INVALID_DATA) from None
    return Body(_within(raw, "data.json", limit), DEFAULT_CONTENT_TYPES["json"])


def _within(raw: bytes, what: str, limit: int) -> bytes:
    if len(raw) > limit:
        raise too_large(what, len(raw), limit)
    return raw


def too_large(what: str, size: int, limit: int) -> PermanentError:
    return PermanentError(
        f"{what} of {size} bytes exceeds custom_config.max_object_bytes ({limit})",
        code=ErrorCode.LIMIT_EXCEEDED,
    )


def encode_reply(raw: bytes, encoding: Encoding) -> str:
    """The object's bytes as reply text: base64, or UTF-8 text (refused when the bytes are not UTF-8)."""
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PermanentError(
            f"the object is not UTF-8 text (invalid byte at offset {exc.start}); ask for encoding 'base64'",
            code=ErrorCode.INVALID_DATA,
        ) from None


def check_content_type(value: str) -> str:
    if len(value) > MAX_CONTENT_TYPE_CHARS or not _CONTENT_TYPE.fullmatch(value):
        raise PermanentError(
            "parameters.content_type is not a media type such as 'text/csv; charset=utf-8'",
            code=ErrorCode.INVALID_REQUEST,
        )
    return value


def metadata_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    """User metadata as `x-amz-meta-*` headers; names are case-insensitive and stored in lower case."""
    headers: dict[str, str] = {}
    for name, value in metadata.items():
        if not _META_NAME.fullmatch(name):
            raise _bad_metadata(f"name {name[:40]!r} is not letters, digits, '-' and '_' (at most 128)")
        if not isinstance(value, str) or not _META_VALUE.fullmatch(value):
            raise _bad_metadata(f"value of {name!r} is not printable ASCII without leading/trailing blanks")
        header = USER_METADATA_HEADER + name.lower()
        if header in headers:
            raise _bad_metadata(f"name {name!r} repeats another name (names ignore case)")
        headers[header] = value
    size = sum(len(name) + len(value) for name, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise PermanentError(
            f"parameters.metadata holds {size} bytes; S3 keeps at most {MAX_METADATA_BYTES}",
            code=ErrorCode.LIMIT_EXCEEDED,
        )
    return headers


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's metadata back from response headers: `x-amz-meta-*` only, without the prefix."""
    return {
        name.lower().removeprefix(USER_METADATA_HEADER): value
        for name, value in headers.items()
        if name.lower().startswith(USER_METADATA_HEADER)
    }


def _bad_metadata(reason: str) -> PermanentError:
    return PermanentError(f"parameters.metadata {reason}", code=ErrorCode.INVALID_REQUEST)
