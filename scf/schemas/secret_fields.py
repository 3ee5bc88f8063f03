"""Secrets declared by the config models, and the parsers that mask them for everything leaving the fleet.

Masking by key name guesses; here each config model says which fields are credentials (`SecretStr`),
which are DSNs/URLs shown with only their secret parts masked (`SecretDsn`) and which are header maps
(`HeaderMap`: every value secret unless the header is on `SAFE_HEADERS`). The DSN parsers are hand-written
single passes over text capped at `MAX_DSN_CHARS`: linear, no backtracking, and never echo what they
cannot read (an unreadable DSN is masked whole).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from scf.schemas.secrets import MASK, mask_query, mask_url, redact

# Defined with the other name rules in `secrets` (mask_url needs them too); re-exported for callers.
from scf.schemas.secrets import SECRET_PARAMS as SECRET_PARAMS
from scf.schemas.secrets import param_is_secret as param_is_secret

#: Longer DSN/URL text is masked whole rather than scanned (config fields cap it well below this).
MAX_DSN_CHARS = 16_384
_QUERY_START = re.compile(r"[?#]")

#: Headers that never carry credentials: their values are shown in list/get replies and sent to any
#: origin. Every other configured header is a secret (masked, sent only to the connector's own origin).
SAFE_HEADERS = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-language",
        "cache-control",
        "content-language",
        "content-type",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "pragma",
        "user-agent",
        "x-request-id",
        "x-correlation-id",
    }
)


@dataclass(frozen=True)
class DsnField:
    """Marks a `SecretStr` field holding a DSN/URL: shown with its password and secret parameters masked."""


@dataclass(frozen=True)
class HeaderField:
    """Marks a `dict[str, str]` of HTTP headers: values masked unless the name is in `SAFE_HEADERS`."""


SecretDsn = Annotated[SecretStr, DsnField()]
HeaderMap = Annotated[dict[str, str], HeaderField()]


def header_is_secret(name: str) -> bool:
    return name.strip().lower() not in SAFE_HEADERS


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(k): (MASK if header_is_secret(str(k)) and v not in (None, "") else v) for k, v in headers.items()
    }


def mask_dsn(text: str) -> str:
    """`text` with every secret masked: URL userinfo password, secret query parameters, keyword values."""
    if len(text) > MAX_DSN_CHARS:
        return MASK
    if _starts_with_scheme(text):
        return _mask_url(text)
    if "=" in text:  # keyword DSN, even when a value holds '://' (options='-c x=a://b')
        return _mask_keywords(text)
    if "://" in text:  # free text quoting a URL
        return mask_url(text)
    return text


def _starts_with_scheme(text: str) -> bool:
    end = text.find("://")
    scheme = text[:end]
    return end > 0 and scheme[0].isalpha() and all(ch.isalnum() or ch in "+.-" for ch in scheme)


def _mask_url(text: str) -> str:
    """`scheme://user:password@host/path?query#fragment`, read without urlsplit's early authority end.

    A password may hold unencoded '/', '?', '#' or '@': everything between the first ':' of the
    userinfo and the LAST '@' is masked, so a careless DSN over-masks rather than leaks.
    """
    if any(ch.isspace() for ch in text):
        return MASK  # not one URL: what follows the space may be anything (`url password=x`)
    start = text.index("://") + 3
    head, rest = text[:start], text[start:]
    at = rest.rfind("@")
    if at >= 0:
        colon = rest.find(":", 0, at)
        user = rest[:colon] if colon >= 0 else rest[:at]
        if any(ch in user for ch in "/?#"):  # the '@' is not in the authority: no userinfo
            at = -1
        elif colon >= 0:
            rest = f"{rest[:colon]}:{MASK}{rest[at:]}"
            at = colon + 1 + len(MASK)
    query = _QUERY_START.search(rest, max(at, 0))  # a fragment alone may carry one (`#access_token=`)
    if query is None:
        return head + rest
    return head + rest[: query.end()] + mask_query(rest[query.end() :])


def _mask_keywords(text: str) -> str:
    """A libpq keyword DSN (`host=h password='a b'`), secret values masked; MASK when unreadable."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return " ".join(parts)
        key_start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[key_start:i]
        while i < n and text[i].isspace():
            i += 1
        if not key or i >= n or text[i] != "=":
            return MASK
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value_start = i
        if i < n and text[i] == "'":
            i += 1
            while i < n and text[i] != "'":
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return MASK  # unterminated quote: the rest may all be the secret
            i += 1
        else:
            while i < n and not text[i].isspace():
                i += 2 if text[i] == "\\" else 1
        value = text[value_start : min(i, n)]
        if value and param_is_secret(key):
            value = MASK
        elif "://" in value:  # a URL as a value (`x=postgres://u:p@h`) keeps none of its secrets
            value = mask_url(value)
        parts.append(f"{key}={value}")


def mask_text(value: str) -> str:
    """A plain string of a config: key-name masking is the caller's; a URL in it loses its secrets."""
    return mask_dsn(value) if "://" in value else value


def public_config(parsed: BaseModel, raw: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` (the config as given) with every secret the model `parsed` declares masked.

        Walks the keys the caller gave (so the reply has the caller's shape), choosing the masking from the
        parsed model's field: `SecretStr` -> MASK, `SecretDsn` -> `mask_dsn`, `HeaderMap` -> `mask_headers`,
        nested models recursively. Keys the model does not declare fall back to `redact` by name (strings
    longer than `MAX_DSN_CHARS` are masked whole first, so no scan runs over megabytes of config).
    """
    fields = type(parsed).model_fields
    names = {(info.alias or name): name for name, info in fields.items()}
    names.update({name: name for name in fields})
    public: dict[str, Any] = {}
    for key, value in raw.items():
        name = names.get(str(key))
        if name is None:
            public[str(key)] = _fallback(value, str(key))
        else:
            public[str(key)] = _public_value(fields[name], getattr(parsed, name), value, str(key))
    return public


def _public_value(info: FieldInfo | None, current: Any, value: Any, key: str) -> Any:
    if value is None:
        return None
    marks = _marks(info)
    if any(isinstance(m, DsnField) for m in marks):
        return mask_dsn(value) if isinstance(value, str) else MASK
    if any(isinstance(m, HeaderField) for m in marks):
        return mask_headers(value) if isinstance(value, Mapping) else MASK
    if isinstance(current, SecretStr):
        return MASK
    if isinstance(current, BaseModel) and isinstance(value, Mapping):
        return public_config(current, value)
    if isinstance(current, list | tuple) and isinstance(value, list) and len(current) == len(value):
        return [_public_value(None, c, v, key) for c, v in zip(current, value, strict=True)]
    if isinstance(current, Mapping) and isinstance(value, Mapping):
        return {str(k): _public_value(None, current.get(k), v, str(k)) for k, v in value.items()}
    return _fallback(value, key)


def _marks(info: FieldInfo | None) -> list[Any]:
    """The field's markers, also from inside `SecretDsn | None` (pydantic keeps those in the annotation)."""
    if info is None:
        return []
    marks = list(info.metadata)
    for arg in get_args(info.annotation):
        marks.extend(getattr(arg, "__metadata__", ()))
    return marks


def _fallback(value: Any, key: str) -> Any:
    masked = redact(capped(value), key=key)
    if isinstance(masked, str):
        return mask_text(masked)
    if isinstance(masked, list):
        return [mask_text(v) if isinstance(v, str) else v for v in masked]
    return masked


def capped(value: Any, depth: int = 0) -> Any:
    """`value` with every string longer than `MAX_DSN_CHARS` masked whole, before any scan looks at it."""
    if isinstance(value, str):
        return MASK if len(value) > MAX_DSN_CHARS else value
    if depth > 32:
        return MASK
    if isinstance(value, Mapping):
        return {k: capped(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [capped(v, depth + 1) for v in value]
    return value
