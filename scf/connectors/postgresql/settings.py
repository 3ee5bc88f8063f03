"""Pure translation of a `ServiceConnection` + `PostgresConfig` into asyncpg pool arguments.

Precedence: a `custom_config.connection_string` DSN is the base; host/port/username/password/database
given on the connection override it; `custom_config.database` overrides both. TLS follows
`custom_config.ssl_mode`, else `ssl_enabled` ('require'), else the DSN's own `sslmode`, else 'disable'.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scf.connectors.postgresql.identifiers import quote_ident
from scf.connectors.postgresql.session import READ_ONLY_SETTINGS
from scf.schemas.configs.postgresql import PostgresConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ErrorCode

#: Per-statement limit when the request gives no timeout of its own.
DEFAULT_COMMAND_TIMEOUT = 300.0
_APPLICATION_NAME_BYTES = 63


@dataclass(frozen=True)
class PoolSettings:
    connect: dict[str, Any] = field(repr=False)  # holds the password: never logged
    min_size: int
    max_size: int
    command_timeout: float


def ssl_mode(connection: ServiceConnection, config: PostgresConfig) -> str | ssl.SSLContext | None:
    """The asyncpg `ssl=` value; `None` leaves it to the DSN's `sslmode`.

    With `ssl_root_cert`, verify-ca / verify-full become a context trusting exactly that CA bundle
    (verify-full also checks the host name).
    """
    if config.ssl_root_cert is not None:
        return _verifying_context(config.ssl_root_cert, check_hostname=config.ssl_mode == "verify-full")
    if config.ssl_mode is not None:
        if connection.ssl_enabled and config.ssl_mode in ("disable", "allow"):
            raise ConfigurationError(
                f"ssl_enabled is true but custom_config.ssl_mode is {config.ssl_mode!r}",
                code=ErrorCode.INVALID_CONFIG,
            )
        return config.ssl_mode
    if connection.ssl_enabled:
        return "require"
    if config.connection_string and _dsn_has_sslmode(config.connection_string.get_secret_value()):
        return None
    return "disable"


def _verifying_context(ca_file: str, *, check_hostname: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            "custom_config.ssl_root_cert cannot be read as a PEM CA bundle",
            code=ErrorCode.INVALID_CONFIG,
            detail=type(exc).__name__,
        ) from None
    context.check_hostname = check_hostname
    return context


def _dsn_has_sslmode(dsn: str) -> bool:
    try:
        return "sslmode" in parse_qs(urlsplit(dsn).query)
    except ValueError:
        return False  # asyncpg will refuse the DSN itself, as a configuration error


def pool_settings(connection: ServiceConnection, config: PostgresConfig) -> PoolSettings:
    connect: dict[str, Any] = {
        "timeout": connection.connection_timeout,
        "server_settings": {
            "search_path": quote_ident(config.schema_),
            "application_name": _application_name(connection.service_name),
            # the query guard parses with standard strings: the server must read literals the same way
            "standard_conforming_strings": "on",
            # a read-only connector's statements run read-only without a BEGIN of their own; writes
            # open `BEGIN READ WRITE` (statements.bounded_transaction)
            **({} if config.allow_writes_in_query else READ_ONLY_SETTINGS),
        },
    }
    if config.connection_string:
        connect["dsn"] = config.connection_string.get_secret_value()
    explicit = {
        "host": connection.host,
        "port": connection.port,
        "user": connection.username,
        "password": connection.secret_password(),
        "database": config.database or connection.database,
        "ssl": ssl_mode(connection, config),
    }
    connect.update({k: v for k, v in explicit.items() if v is not None})
    max_size = config.max_connections or config.connection_pool_size or connection.connection_pool_size
    # both given (the spec's example: 5 and 20): keep `connection_pool_size` open, grow to `max_connections`
    min_size = (
        min(config.connection_pool_size, max_size)
        if config.max_connections and config.connection_pool_size
        else 1
    )
    return PoolSettings(
        connect=connect, min_size=min_size, max_size=max_size, command_timeout=DEFAULT_COMMAND_TIMEOUT
    )


def _application_name(service_name: str) -> str:
    return f"scf:{service_name}".encode()[:_APPLICATION_NAME_BYTES].decode("utf-8", "ignore")
