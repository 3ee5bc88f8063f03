"""What a caller without `connectors:admin` may do and see: guard-widening configs, masked failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, TransientError

#: Config fields that widen a guard when set: lists when non-empty, flags when true.
WIDENING_LISTS = ("allowed_hosts", "url_allowed_hosts")
WIDENING_FLAGS = ("allow_private", "url_allow_private")
CONNECT_FAILURE_CODES = frozenset({ErrorCode.CONNECTION_FAILED, ErrorCode.TIMEOUT})
MASKED_MESSAGE = "could not connect to the service"
_FALSE_TEXT = frozenset({"", "false", "f", "0", "no", "n", "off"})
_FIELDS = (*WIDENING_LISTS, *WIDENING_FLAGS)


def widens(config: Mapping[str, Any] | BaseModel | None) -> bool:
    """True when `config` widens an SSRF guard on purpose: a custom_config (raw or parsed) or a whole
    connection body (its `custom_config` is looked into). Judged on the raw values, leniently: any
    value a model might coerce to true ("true", 1) counts, so no spelling slips past the caller's check.
    """
    if isinstance(config, BaseModel):
        config = {name: getattr(config, name, None) for name in _FIELDS}
    if not isinstance(config, Mapping):
        return False
    parts: list[Mapping[str, Any]] = [config]
    inner = config.get("custom_config")
    if isinstance(inner, Mapping):
        parts.append(inner)
    return any(_set(part.get(name)) for part in parts for name in _FIELDS)


def _set(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return value is True
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value[:16].strip().lower() not in _FALSE_TEXT
    if isinstance(value, list | tuple | dict | set):
        return len(value) > 0
    return True


def masked(exc: ConnectorError) -> ConnectorError:
    """`exc` as a caller without `connectors:admin` sees it: every way of failing to connect (refused,
    reset, timed out, unreachable, a name that does not resolve) is one detail-free error, so the
    connector cannot be used to map a network. Other errors pass unchanged."""
    if exc.category is ErrorCategory.TRANSIENT and exc.code in CONNECT_FAILURE_CODES:
        return TransientError(MASKED_MESSAGE, code=ErrorCode.CONNECTION_FAILED)
    return exc
