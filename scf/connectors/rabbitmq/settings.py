"""Pure translation of a `ServiceConnection` + `RabbitMQConfig` into where and how to connect.

The address comes from `custom_config.url` or from host/port (5672, or 5671 with TLS). Credentials come
from the URL or from username/password; with neither, RabbitMQ's defaults (guest/guest) apply. The TLS
context is built here too, so an unreadable CA file is a configuration error, never a network one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ErrorCode

AMQP_PORT = 5672
AMQPS_PORT = 5671
DEFAULT_LOGIN = "guest"


@dataclass(frozen=True)
class ConnectSettings:
    host: str
    port: int
    vhost: str
    login: str
    password: str = field(repr=False)  # never logged
    tls: bool
    ca_file: str | None
    verify: bool
    heartbeat: int
    timeout: float
    name: str

    @property
    def where(self) -> str:
        """The address without credentials: safe for logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'amqps' if self.tls else 'amqp'}://{host}:{self.port} vhost={self.vhost!r}"

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `aio_pika.connect` (without the TLS context, see `tls_context`)."""
        return {
            "host": self.host,
            "port": self.port,
            "login": self.login,
            "password": self.password,
            "virtualhost": self.vhost,
            "ssl": self.tls,
            "timeout": self.timeout,
            "heartbeat": self.heartbeat,
            "client_properties": {"connection_name": self.name},
        }


def connect_settings(connection: ServiceConnection, config: RabbitMQConfig) -> ConnectSettings:
    if config.url is not None:
        parts = urlsplit(config.url.get_secret_value())
        tls = parts.scheme == "amqps"
        # A failover endpoint is this connection with another host (check_connection refuses host and
        # url together otherwise): the backup's address wins, the URL supplies the rest.
        host = connection.host or parts.hostname or ""
        port = connection.port or parts.port
        login = unquote(parts.username) if parts.username else connection.username
        password = unquote(parts.password) if parts.password else connection.secret_password()
        vhost = config.url_vhost() or config.vhost
    else:
        tls = connection.ssl_enabled
        host = connection.host or ""
        port = connection.port
        login = connection.username
        password = connection.secret_password()
        vhost = config.vhost
    if not host:
        raise ConfigurationError("rabbitmq needs host or custom_config.url", code=ErrorCode.INVALID_CONFIG)
    if config.ssl_ca_file is not None and not tls:
        raise ConfigurationError(
            "custom_config.ssl_ca_file is set but TLS is off (set ssl_enabled or use amqps://)",
            code=ErrorCode.INVALID_CONFIG,
        )
    if login is None and password is None:
        login, password = DEFAULT_LOGIN, DEFAULT_LOGIN
    return ConnectSettings(
        host=host,
        port=port or (AMQPS_PORT if tls else AMQP_PORT),
        vhost=vhost,
        login=login or "",
        password=password or "",
        tls=tls,
        ca_file=config.ssl_ca_file,
        verify=config.ssl_verify,
        heartbeat=config.heartbeat,
        timeout=connection.connection_timeout,
        name=f"scf-connector:{connection.service_name}",
    )


def tls_context(settings: ConnectSettings) -> ssl.SSLContext | None:
    """The TLS context of a TLS connection (None without TLS). Raises `configuration` errors."""
    if not settings.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            "custom_config.ssl_ca_file cannot be read as a PEM CA bundle",
            code=ErrorCode.INVALID_CONFIG,
            detail=f"{type(exc).__name__}: {exc}"[:500],
        ) from None
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
