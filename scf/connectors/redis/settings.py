"""Pure translation of a `ServiceConnection` + `RedisConfig` into connection-pool arguments.

Address from `custom_config.url` or host/port; credentials from username/password (or the URL);
`db` as `RedisConfig.db_for` decides; TLS verified unless `ssl_verify` is false. The pool holds at most
`max_connections` (default `connection_pool_size`) and a caller waits at most `connection_timeout` for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scf.schemas.configs.redis import DEFAULT_PORT, RedisConfig
from scf.schemas.connection import ServiceConnection


@dataclass(frozen=True)
class PoolSettings:
    kwargs: dict[str, Any] = field(repr=False)  # holds the password: never logged
    where: str  # log-safe: scheme, host, port and database, no credentials
    tls: bool
    max_connections: int
    socket_timeout: float
    wait_timeout: float


def pool_settings(connection: ServiceConnection, config: RedisConfig) -> PoolSettings:
    address = config.address()
    host = address.host if address is not None else connection.host
    port = address.port if address is not None else connection.port or DEFAULT_PORT
    username = connection.username or (address.username if address is not None else None)
    password = connection.secret_password() or (address.password if address is not None else None)
    db = config.db_for(connection)
    tls = config.use_tls(connection)
    socket_timeout = config.socket_timeout or connection.connection_timeout
    max_connections = config.max_connections or connection.connection_pool_size
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "db": db,
        "username": username,
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connection.connection_timeout,
        "health_check_interval": config.health_check_interval,
    }
    if tls:
        kwargs.update(
            ssl_cert_reqs="required" if config.ssl_verify else "none",
            ssl_check_hostname=config.ssl_verify,
            ssl_ca_certs=config.ssl_ca_file,
            ssl_certfile=config.ssl_certfile,
            ssl_keyfile=config.ssl_keyfile,
        )
    scheme = "rediss" if tls else "redis"
    return PoolSettings(
        kwargs=kwargs,
        where=f"{scheme}://{host}:{port}/{db}",
        tls=tls,
        max_connections=max_connections,
        socket_timeout=socket_timeout,
        wait_timeout=connection.connection_timeout,
    )
