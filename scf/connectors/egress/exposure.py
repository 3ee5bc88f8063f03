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


def widens(config: Mapping[str, Any] | BaseModel | None) -> bool:
    """True when `config` (a custom_config or its parsed model) widens an SSRF guard on purpose."""
    if config is None:
        return False
    values = config if isinstance(config, Mapping) else {k: getattr(config, k, None) for k in _FIELDS}
    for name in WIDENING_LISTS:
        entries = values.get(name)
        if isinstance(entries, list | tuple) and len(entries) > 0:
            return True
    return any(values.get(name) is True for name in WIDENING_FLAGS)


_FIELDS = (*WIDENING_LISTS, *WIDENING_FLAGS)


def masked(exc: ConnectorError) -> ConnectorError:
    """`exc` as a caller without `connectors:admin` sees it: every way of failing to connect (refused,
    reset, timed out, unreachable, a name that does not resolve) is one detail-free error, so the
    connector cannot be used to map a network. Other errors pass unchanged."""
    if exc.category is ErrorCategory.TRANSIENT and exc.code in CONNECT_FAILURE_CODES:
        return TransientError(MASKED_MESSAGE, code=ErrorCode.CONNECTION_FAILED)
    return exc
