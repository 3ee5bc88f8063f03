"""`custom_config` of a `redis` connector: where Redis is, TLS, pool bounds, the key prefix and limits.

Every key and channel the connector touches starts with its key prefix (default `<service_name>:`);
the fleet keeps its own state under `scf:`, so a prefix that could reach that space is refused. This
module imports no driver: the dispatcher validates create requests with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from scf.schemas.secret_fields import SecretDsn

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

MIB = 1024 * 1024
DEFAULT_PORT = 6379
#: Redis ships with 16 databases (0-15); a server configured with more `databases` accepts higher ones.
MAX_DB_INDEX = 1023
MAX_PREFIX_BYTES = 256
#: The fleet's own Redis layout (docs/architecture.md). No connector prefix may reach into it.
FLEET_PREFIX = "scf:"


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be a connector's key prefix, or None when it can."""
    if not prefix:
        return "must not be empty (an empty prefix would expose every key of the database)"
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_PREFIX_BYTES:
        return f"must be at most {MAX_PREFIX_BYTES} bytes"
    if not prefix.isprintable() or any(ch.isspace() for ch in prefix):
        return "must not hold whitespace or control characters"
    if prefix.startswith(FLEET_PREFIX) or FLEET_PREFIX.startswith(prefix):
        return f"must not overlap the fleet's own key space {FLEET_PREFIX!r}"
    return None


@dataclass(frozen=True)
class RedisAddress:
    """What a `redis://` / `rediss://` URL says, split into parts (credentials unquoted)."""

    host: str
    port: int
    tls: bool
    db: int | None
    username: str | None
    password: str | None


def parse_url(url: str) -> RedisAddress:
    """Split a Redis URL, or raise ValueError naming the problem (never echoing the URL: it may hold a
    password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("must start with redis:// or rediss://")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment; use the custom_config fields")
    path = parts.path.strip("/")
    if path and (not path.isdigit() or int(path) > MAX_DB_INDEX):
        raise ValueError(f"path must be a database index 0-{MAX_DB_INDEX}")
    return RedisAddress(
        host=parts.hostname,
        port=port or DEFAULT_PORT,
        tls=parts.scheme == "rediss",
        db=int(path) if path else None,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class RedisConfig(BaseModel):
    """`custom_config` of a `redis` connector.

    Where: the connection's `host`/`port` (6379), or `url` (`redis://[user:password@]host:port/db`;
    `rediss://` for TLS). Which database: `db`, else the URL's path, else the connection's `database`,
    else 0. TLS: `ssl_enabled`, `tls` or a `rediss://` URL, verified against `ssl_ca_file` (or the
    system store) unless `ssl_verify` is false. Pool: `max_connections` (default the connection's
    `connection_pool_size`), `socket_timeout` (default its `connection_timeout`).
    """

    model_config = ConfigDict(extra="forbid")

    url: SecretDsn | None = Field(default=None, min_length=1, max_length=2048, repr=False)
    db: int | None = Field(default=None, ge=0, le=MAX_DB_INDEX)
    key_prefix: str | None = None
    tls: bool = False
    ssl_ca_file: str | None = Field(default=None, min_length=1, max_length=4096)
    ssl_certfile: str | None = Field(default=None, min_length=1, max_length=4096)
    ssl_keyfile: str | None = Field(default=None, min_length=1, max_length=4096)
    ssl_verify: bool = True
    max_connections: int | None = Field(default=None, ge=1, le=1_000)
    socket_timeout: float | None = Field(default=None, gt=0, le=600)
    health_check_interval: float = Field(default=30.0, ge=0, le=3600)
    session_ttl: int = Field(default=1800, ge=1, le=30 * 24 * 3600)
    max_value_bytes: int = Field(default=8 * MIB, ge=1, le=512 * MIB)
    max_items: int = Field(default=10_000, ge=1, le=100_000)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            parse_url(url.get_secret_value())
        return url

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, prefix: str | None) -> str | None:
        problem = None if prefix is None else prefix_problem(prefix)
        if problem is not None:
            raise ValueError(f"key_prefix {problem}")
        return prefix

    def prefix_for(self, service_name: str) -> str:
        """The key prefix in force: the configured one, else `<service_name>:`."""
        return self.key_prefix if self.key_prefix is not None else f"{service_name}:"

    def address(self) -> RedisAddress | None:
        return None if self.url is None else parse_url(self.url.get_secret_value())

    def use_tls(self, connection: ServiceConnection) -> bool:
        address = self.address()
        return connection.ssl_enabled or self.tls or (address is not None and address.tls)

    def db_for(self, connection: ServiceConnection) -> int:
        address = self.address()
        for source in (self.db, address.db if address else None, _database_index(connection)):
            if source is not None:
                return source
        return 0

    def check_connection(self, connection: ServiceConnection) -> None:
        """Refuse settings that say two things at once, or a default prefix in the fleet's key space."""
        address = self.address()
        if address is None and connection.host is None:
            raise ValueError("redis needs host or custom_config.url")
        if address is not None:
            if connection.host is not None or connection.port is not None:
                raise ValueError("give either host/port or custom_config.url, not both")
            if address.password is not None and connection.password is not None:
                raise ValueError("the password is given both in custom_config.url and as password")
            if address.username is not None and connection.username is not None:
                raise ValueError("the username is given both in custom_config.url and as username")
            if not address.tls and (connection.ssl_enabled or self.tls):
                raise ValueError("custom_config.url is redis:// but TLS is requested; use rediss://")
        indexes = {
            source
            for source in (self.db, address.db if address else None, _database_index(connection))
            if source is not None
        }
        if len(indexes) > 1:
            raise ValueError("the database index is given twice with different values")
        tls_files = self.ssl_ca_file or self.ssl_certfile or self.ssl_keyfile
        if tls_files and not self.use_tls(connection):
            raise ValueError(
                "ssl_ca_file/ssl_certfile/ssl_keyfile need TLS (ssl_enabled or custom_config.tls)"
            )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("a client certificate needs both ssl_certfile and ssl_keyfile")
        problem = prefix_problem(self.prefix_for(connection.service_name))
        if problem is not None:
            raise ValueError(f"the default key prefix {problem}; set custom_config.key_prefix")


def _database_index(connection: ServiceConnection) -> int | None:
    if connection.database is None:
        return None
    if not connection.database.isdigit() or int(connection.database) > MAX_DB_INDEX:
        raise ValueError(f"database must be a Redis database index 0-{MAX_DB_INDEX}")
    return int(connection.database)
