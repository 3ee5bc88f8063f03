"""`custom_config` of a `rabbitmq` connector: vhost, an optional AMQP URL, TLS, and the request limits.

The connector opens its own connection (never the fleet's): to `url`, or to the connection's host/port
with its username/password. The name rules live here, without the driver, so the dispatcher checks a
default exchange with the very same rule the connector applies to every request.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from scf.schemas.secret_fields import SecretDsn

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

MAX_NAME_BYTES = 255
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: RabbitMQ's own ceiling on a message body (`max_message_size`, 3.8+).
MAX_MESSAGE_BYTES = 512 * 1024 * 1024


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a queue, exchange, routing key or vhost, or None when it can.

    AMQP 0-9-1 short strings hold at most 255 bytes; control characters are refused because they make
    names unreadable in logs and the management UI and are never what a caller meant.
    """
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes (UTF-8)"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "must not contain control characters"
    return None


def url_problem(url: str) -> str | None:
    """Why `url` is not a usable AMQP address, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("amqp", "amqps"):
        return "must start with amqp:// or amqps://"
    if not parts.hostname:
        return "has no host"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment (use the custom_config fields)"
    vhost = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    problem = name_problem(vhost) if vhost else None
    return None if problem is None else f"virtual host {problem}"


class RabbitMQConfig(BaseModel):
    """`custom_config` of a `rabbitmq` connector.

    Where: `url` (`amqp://` or `amqps://`, may carry user, password and vhost) or the connection's
    host/port (default 5672, 5671 with TLS). TLS when `ssl_enabled` or `amqps://`, checked against
    `ssl_ca_file` (else the system CAs) unless `ssl_verify` is false. Limits bound every request.
    Names starting with `scf.` (and the exchange `scf`) belong to the fleet; they are refused unless
    `allow_fleet_names` is true, so a connector cannot eat or feed the fleet's own queues.
    """

    model_config = ConfigDict(extra="forbid")

    vhost: str = Field(default="/", min_length=1)
    url: SecretDsn | None = Field(default=None, min_length=1, max_length=2048, repr=False)
    ssl_ca_file: str | None = Field(default=None, min_length=1, max_length=4096)
    ssl_verify: bool = True
    heartbeat: int = Field(default=30, ge=0, le=600, description="seconds; 0 disables heartbeats")
    publisher_confirms: bool = Field(
        default=True,
        description="wait for the broker's confirm of every publish; without, `published` means written "
        "to the socket and unroutable messages go unreported",
    )
    default_exchange: str = Field(default="", description="exchange of `publish` when none is given")
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, ge=1, le=MAX_MESSAGE_BYTES)
    max_batch: int = Field(default=10_000, ge=1, le=100_000)
    max_consume: int = Field(default=1_000, ge=1, le=10_000)
    allow_fleet_names: bool = False

    @field_validator("vhost", "default_exchange")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: SecretStr | None) -> SecretStr | None:
        problem = None if url is None else url_problem(url.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return url

    def url_vhost(self) -> str | None:
        """The vhost the URL names (None when its path is empty)."""
        if self.url is None:
            return None
        path = urlsplit(self.url.get_secret_value()).path
        return unquote(path[1:]) if len(path) > 1 else None

    def check_connection(self, connection: ServiceConnection) -> None:
        """Refuse settings that say two things at once, or say nothing about where to connect."""
        if self.url is None and not connection.host:
            raise ValueError("rabbitmq needs host or custom_config.url")
        if self.url is None:
            return
        parts = urlsplit(self.url.get_secret_value())
        if connection.host is not None or connection.port is not None:
            raise ValueError("give either host/port or custom_config.url, not both")
        if (parts.username or parts.password) and (connection.username or connection.password):
            raise ValueError("credentials are given both in custom_config.url and in username/password")
        if parts.scheme == "amqp" and connection.ssl_enabled:
            raise ValueError("ssl_enabled is true but custom_config.url is amqp:// (use amqps://)")
        if self.url_vhost() is not None and "vhost" in self.model_fields_set:
            raise ValueError("the vhost is given both in custom_config.url and in custom_config.vhost")
