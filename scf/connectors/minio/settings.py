"""Pure translation of a `ServiceConnection` + `MinioConfig` into the SDK client's settings.

Precedence: `custom_config.endpoint` over the connection's host/port; `custom_config` credentials over
username/password (the config refuses both at once); `custom_config.secure` over `ssl_enabled`. The
thread pool defaults to the connection's pool size, the connect timeout to its connection_timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scf.schemas.configs.minio import MinioConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ErrorCode


@dataclass(frozen=True)
class ClientSettings:
    endpoint: str
    secure: bool
    region: str | None
    cert_check: bool
    threads: int
    connect_timeout: float
    read_timeout: float
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


def endpoint(connection: ServiceConnection, config: MinioConfig) -> str:
    if config.endpoint:
        return config.endpoint
    host = connection.host
    if not host:  # the config model refuses this at create; kept for configs built in-process
        raise ConfigurationError("minio needs custom_config.endpoint or host", code=ErrorCode.INVALID_CONFIG)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return host if connection.port is None else f"{host}:{connection.port}"


def client_settings(connection: ServiceConnection, config: MinioConfig) -> ClientSettings:
    access_key = config.access_key.get_secret_value() if config.access_key else None
    secret_key = config.secret_key.get_secret_value() if config.secret_key else None
    if access_key is None and (connection.username or connection.password):
        access_key, secret_key = connection.username, connection.secret_password()
        if not access_key or not secret_key:
            raise ConfigurationError(
                "username (access key) and password (secret key) go together", code=ErrorCode.INVALID_CONFIG
            )
    return ClientSettings(
        endpoint=endpoint(connection, config),
        secure=connection.ssl_enabled if config.secure is None else config.secure,
        region=config.region,
        cert_check=config.cert_check,
        threads=config.thread_pool_size or connection.connection_pool_size,
        connect_timeout=connection.connection_timeout,
        read_timeout=config.read_timeout,
        access_key=access_key,
        secret_key=secret_key,
        session_token=config.session_token.get_secret_value() if config.session_token else None,
    )
