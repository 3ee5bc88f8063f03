"""Pure helpers that decide what is a secret and mask it, for replies, logs, metrics and dead letters.

A value is secret when its key looks like a credential (password, token, secret, api key, ...) or when
it is a URL/DSN carrying a password in its userinfo. Masking never fails and never returns the secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "**********"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization"
    r"|client[_-]?secret|session[_-]?token|cookie|fernet)",
    re.IGNORECASE,
)
_URL_WITH_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def mask_url(value: str) -> str:
    """Replace the password of every `scheme://user:password@` in the text by the mask."""
    return _URL_WITH_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)


def mask_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = f"{parts.username or ''}:{MASK}@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(value: Any, *, key: str | None = None, depth: int = 0) -> Any:
    """Return a copy of `value` with every secret masked (keys by name, URLs by userinfo)."""
    if depth > 32:
        return MASK
    if key is not None and is_secret_key(key) and value not in (None, "", {}, []):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k), depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, depth=depth + 1) for v in value]
    if isinstance(value, str):
        return mask_url(value)
    return value
