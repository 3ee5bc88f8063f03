"""Errors about reaching or logging in to a service name the endpoint and the user they were about:
`cannot reach the service (127.0.0.1:5999, user 'app', database 'orders')`. The configured values
only, never a password or a token (docs/resilience.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel

from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCode

#: Errors about reaching or logging in to the service (as a driver raised them: `translate`).
ENDPOINT_CODES = frozenset(
    {
        ErrorCode.CONNECTION_FAILED,
        ErrorCode.TIMEOUT,
        ErrorCode.AUTHENTICATION_FAILED,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.TOO_MANY_CONNECTIONS,
        ErrorCode.INVALID_CONFIG,  # from a driver: no such database, a certificate refused...
    }
)


def endpoint_label(connection: ServiceConnection, type_config: BaseModel | None = None) -> str:
    """`127.0.0.1:5432, user 'app', database 'orders'` (or the host of a configured `url`)."""
    host, port = connection.host, connection.port
    if host is None:
        url = getattr(type_config, "url", None)
        if isinstance(url, str):
            try:
                parts = urlsplit(url)
                host, port = parts.hostname, parts.port
            except ValueError:
                host, port = None, None
    named = []
    if host:
        shown = f"[{host}]" if ":" in host else host
        named.append(f"{shown}:{port}" if port else shown)
    if connection.username:
        named.append(f"user {connection.username!r}")
    if connection.database:
        named.append(f"database {connection.database!r}")
    return ", ".join(named)


def name_endpoint(
    error: ConnectorError, connection: ServiceConnection, type_config: BaseModel | None
) -> None:
    """Add the endpoint to a freshly classified reach/login error's message (and `where`)."""
    if error.code not in ENDPOINT_CODES or error.where:
        return
    where = endpoint_label(connection, type_config)
    if where:
        error.message = f"{error.message} ({where})"
        error.where = where
