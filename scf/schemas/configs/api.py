"""`custom_config` of an `api` connector: base URL, one authentication method, SSRF exceptions and limits.

Secrets (passwords, tokens, keys) are `SecretStr` fields kept out of reprs, and every configured header
value is a secret unless its name is in `secret_fields.SAFE_HEADERS`; `ServiceConnection.public_view`
masks them by what this model declares. `parse_host_rule` is the one grammar of an `allowed_hosts`
entry, shared by this model (to refuse a bad entry at create time) and by the connector's SSRF guard.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from scf.schemas.configs.api_signed import AwsSigV4Auth, JwtAuth
from scf.schemas.secret_fields import HeaderMap, header_is_secret
from scf.schemas.validation import Strict

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

MIB = 1024 * 1024
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# WHATWG URL: a host whose last label is a number is an IPv4 address in some notation (127.1, 0x7f.1).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_CANONICAL_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
#: Headers the transport owns; a config or request setting them could smuggle a second request.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "proxy-authorization",
        "proxy-connection",
        "accept-encoding",
    }
)


def header_problem(name: str, value: str) -> str | None:
    """Why `name: value` cannot be sent as a configured or requested header, or None."""
    if not _HEADER_NAME.match(name):
        return f"header name {name[:40]!r} is not a valid token"
    if name.lower() in RESERVED_HEADERS:
        return f"header {name!r} is set by the transport, not by configuration"
    if any(ch in value for ch in "\r\n\0"):
        return f"header {name!r} holds a line break or NUL"
    return None


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Raise ValueError naming the first header that HTTP would refuse or split (for validators)."""
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ValueError(problem)
    return headers


def host_kind(host: str) -> IPAddress | str:
    """An IP address for an IP host, else the hostname; ValueError for odd numeric forms and bad names.

    Only canonical dotted-quad IPv4 and bracket-free IPv6 literals count as addresses: 2130706433,
    0x7f000001, 0177.0.0.1 and 127.1 all mean 127.0.0.1 to some resolver, so they are refused outright.
    """
    host = host.lower()
    if not host:
        raise ValueError("the host is empty")
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone identifiers are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("the host is not a valid IPv6 address") from None
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        if _CANONICAL_IPV4.match(host):
            return ipaddress.IPv4Address(host)
        raise ValueError("the host is a number in a non-canonical form (write a dotted-quad address)")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("the host is not a valid DNS name")
    return name


@dataclass(frozen=True)
class HostRule:
    """One `allowed_hosts` entry: a hostname (`*.` wildcard allowed) or an IP network, maybe with a port."""

    hostname: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches_host(self, host: str, port: int) -> bool:
        if self.hostname is None or (self.port is not None and self.port != port):
            return False
        host = host.lower().rstrip(".")
        if self.hostname.startswith("*."):
            return host.endswith(self.hostname[1:]) and len(host) > len(self.hostname) - 1
        return host == self.hostname

    def matches_address(self, address: IPAddress, port: int) -> bool:
        if self.network is None or (self.port is not None and self.port != port):
            return False
        return address.version == self.network.version and address in self.network


def parse_host_rule(text: str) -> HostRule:
    """Parse `host`, `host:port`, `*.domain`, `10.0.0.0/8`, `192.0.2.7:8080` or `[::1]:8080`."""
    entry = text.strip().lower()
    if "/" in entry:
        try:
            return HostRule(network=ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid network ({exc})") from None
    host, port = _split_port(entry, text)
    wildcard = host.startswith("*.")
    kind = host_kind(host[2:] if wildcard else host)
    if isinstance(kind, str):
        return HostRule(hostname=("*." if wildcard else "") + kind, port=port)
    if wildcard:
        raise ValueError(f"{text!r}: a wildcard needs a domain name, not an address")
    return HostRule(network=ipaddress.ip_network(kind), port=port)


def _split_port(entry: str, text: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r} is not host, host:port or [IPv6]:port")
        return host, _port(rest[1:], text) if rest else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, _port(port, text)
    return entry, None


def _port(value: str, text: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{text!r} has an invalid port")
    return int(value)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a base or token URL (scheme, host, credentials), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    if "@" in parts.netloc:
        return "must not carry credentials: configure custom_config.auth instead"
    if parts.fragment:
        return "must not have a fragment"
    return None


class BasicAuth(Strict):
    """HTTP basic authentication; without a username/password here, the connection's own are used."""

    type: Literal["basic"]
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password: SecretStr | None = Field(default=None, max_length=1024, repr=False)


class ApiKeyAuth(Strict):
    """An API key sent in a header (`name: prefix+key`) or as a query parameter `name=key`."""

    type: Literal["api_key"]
    api_key: SecretStr = Field(min_length=1, max_length=4096, repr=False)
    name: str = Field(default="X-API-Key", min_length=1, max_length=128)
    location: Literal["header", "query"] = "header"
    prefix: str = Field(default="", max_length=64)

    @model_validator(mode="after")
    def _check_name(self) -> Self:
        if self.location == "header":
            problem = header_problem(self.name, self.prefix)
            if problem is not None:
                raise ValueError(problem)
        return self


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: SecretStr = Field(min_length=1, max_length=16384, repr=False)


class OAuth2ClientCredentialsAuth(Strict):
    """OAuth 2.0 client credentials (RFC 6749 §4.4); the token is cached until shortly before it expires."""

    type: Literal["oauth2_client_credentials"]
    token_url: str = Field(max_length=2048)
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr = Field(min_length=1, max_length=4096, repr=False)
    scope: str | None = Field(default=None, max_length=2048)
    audience: str | None = Field(default=None, max_length=2048)
    client_auth: Literal["basic", "body"] = "basic"
    expiry_margin: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("token_url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(f"token_url {problem}")
        return url


class MtlsAuth(Strict):
    """A client certificate presented in the TLS handshake (files readable by the worker)."""

    type: Literal["mtls"]
    cert_file: str = Field(min_length=1, max_length=4096)
    key_file: str | None = Field(default=None, min_length=1, max_length=4096)
    key_password: SecretStr | None = Field(default=None, max_length=1024, repr=False)


ApiAuth = Annotated[
    BasicAuth | ApiKeyAuth | BearerAuth | OAuth2ClientCredentialsAuth | JwtAuth | MtlsAuth | AwsSigV4Auth,
    Field(discriminator="type"),
]


class PaginationSpec(Strict):
    """How to ask for the next page: page number, offset, a cursor from the body, or `Link: rel=next`."""

    type: Literal["page", "offset", "cursor", "link"] = "link"
    param: str | None = Field(default=None, min_length=1, max_length=128)
    size_param: str | None = Field(default=None, min_length=1, max_length=128)
    page_size: int | None = Field(default=None, ge=1, le=100_000)
    start: int | None = Field(default=None, ge=0)
    cursor_path: str | None = Field(default=None, min_length=1, max_length=512)

    @model_validator(mode="after")
    def _cursor_needs_path(self) -> Self:
        if self.type == "cursor" and self.cursor_path is None:
            raise ValueError("cursor pagination needs cursor_path (where the next cursor is in the body)")
        if self.type != "cursor" and self.cursor_path is not None:
            raise ValueError("cursor_path only applies to cursor pagination")
        if self.type == "link" and (self.param or self.size_param or self.start is not None):
            raise ValueError("link pagination follows the server's URLs: param/size_param/start do not apply")
        if self.size_param is not None and self.page_size is None:
            raise ValueError("size_param needs page_size")
        return self


class ApiTimeouts(Strict):
    """Per-phase timeouts in seconds; `connect` defaults to the connection's connection_timeout."""

    connect: float | None = Field(default=None, gt=0, le=600)
    read: float = Field(default=30.0, gt=0, le=600)
    write: float = Field(default=30.0, gt=0, le=600)
    pool: float = Field(default=10.0, gt=0, le=600)
    total: float = Field(default=120.0, gt=0, le=3600)


class ApiConfig(BaseModel):
    """`custom_config` of an `api` connector.

    `base_url` (or the connection's host/port/ssl_enabled) is where relative `api_endpoint`s point and
    the only origin that receives the configured credentials. `allowed_hosts` and `allow_private` are
    the operator's deliberate exceptions to the SSRF guard.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, max_length=2048)
    auth: ApiAuth | None = None
    headers: HeaderMap = Field(default_factory=dict, max_length=64, repr=False)
    records_path: str = Field(default="$", min_length=1, max_length=512)
    pagination: PaginationSpec | None = None
    health_path: str | None = Field(default=None, max_length=2048)
    allowed_hosts: list[str] = Field(default_factory=list, max_length=256)
    allow_private: bool = False
    max_response_bytes: int = Field(default=16 * MIB, ge=1024, le=1024 * MIB)
    max_pages: int = Field(default=100, ge=1, le=100_000)
    max_records: int = Field(default=100_000, ge=1, le=10_000_000)
    preview_records: int = Field(default=10, ge=1, le=1000)
    timeouts: ApiTimeouts = Field(default_factory=ApiTimeouts)
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=20)
    verify_tls: bool = True
    ca_file: str | None = Field(default=None, min_length=1, max_length=4096)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, url: str | None) -> str | None:
        problem = None if url is None else url_problem(url)
        if problem is None and url is not None and urlsplit(url).query:
            problem = "must not have a query string (put parameters in the request)"
        if problem is not None:
            raise ValueError(f"base_url {problem}")
        return url

    @field_validator("health_path")
    @classmethod
    def _check_health_path(cls, path: str | None) -> str | None:
        if path is not None and ("://" in path or path.startswith("//")):
            raise ValueError("health_path is a path under base_url, not a URL")
        return path

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    @field_validator("allowed_hosts")
    @classmethod
    def _check_allowed_hosts(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            parse_host_rule(entry)
        return entries

    def host_rules(self) -> tuple[HostRule, ...]:
        return tuple(parse_host_rule(entry) for entry in self.allowed_hosts)

    def check_connection(self, connection: ServiceConnection) -> None:
        if connection.password is not None and not connection.username:
            raise ValueError("a password needs a username (basic authentication)")
        if connection.username and self.auth is not None and self.auth.type != "basic":
            raise ValueError(
                f"username/password is basic authentication; custom_config.auth is {self.auth.type}"
            )
        if isinstance(self.auth, BasicAuth):
            if self.auth.username and connection.username:
                raise ValueError("give the basic-auth username in the connection or in custom_config.auth")
            if not (self.auth.username or connection.username):
                raise ValueError("basic authentication needs a username (connection or custom_config.auth)")
        secret_headers = any(header_is_secret(name) for name in self.headers)
        has_credentials = self.auth is not None or bool(connection.username) or secret_headers
        if has_credentials and not (self.base_url or connection.host):
            raise ValueError(
                "authentication needs custom_config.base_url (or host): credentials only go to that origin"
            )
