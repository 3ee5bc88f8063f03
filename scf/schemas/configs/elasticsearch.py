"""`custom_config` of an `elasticsearch` connector: nodes, API-key or bearer auth, TLS and a default index.

Basic auth comes from the connection's username/password; `api_key` and `bearer_token` are the
alternatives (one method per connector). The index-name rule lives here, without the driver, so the
dispatcher can check a default index and the connector applies the very same rule to every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

MAX_INDEX_NAME_BYTES = 255
MAX_HOSTS = 32
# Elasticsearch's own list (MetadataCreateIndexService), plus ':' (remote-cluster syntax, refused since 7.0).
_FORBIDDEN_INDEX_CHARS = frozenset('\\/*?"<>| ,#:')
_FORBIDDEN_INDEX_STARTS = ("-", "_", "+")


def index_name_problem(name: str) -> str | None:
    """Why `name` is not a valid concrete Elasticsearch index name, or None when it is one."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name.lower() != name:
        return "must be lowercase"
    if name.startswith(_FORBIDDEN_INDEX_STARTS):
        return "must not start with '-', '_' or '+'"
    bad = sorted({c for c in name if c in _FORBIDDEN_INDEX_CHARS or not c.isprintable()})
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    if len(name.encode("utf-8")) > MAX_INDEX_NAME_BYTES:
        return f"must be at most {MAX_INDEX_NAME_BYTES} bytes"
    return None


def host_url_problem(url: str) -> str | None:
    """Why `url` cannot name an Elasticsearch node, or None. Credentials never go in a node URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    if port is None:
        return "must include a port (e.g. https://es.example.com:9200)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials: use username/password, custom_config.api_key or bearer_token"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment"
    return None


class ElasticsearchConfig(BaseModel):
    """`custom_config` of an `elasticsearch` connector.

    `hosts` lists node URLs (several nodes: requests fail over between them); without it the node is
    built from the connection's host, port (default 9200) and ssl_enabled.
    """

    model_config = ConfigDict(extra="forbid")

    hosts: list[str] | None = Field(default=None, min_length=1, max_length=MAX_HOSTS)
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096, repr=False)
    bearer_token: SecretStr | None = Field(default=None, min_length=1, max_length=16384, repr=False)
    ca_certs: str | None = Field(default=None, min_length=1, max_length=4096)
    verify_certs: bool = True
    request_timeout: float | None = Field(default=None, gt=0, le=600)
    index: str | None = None
    http_compress: bool = False

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str] | None) -> list[str] | None:
        for position, url in enumerate(hosts or ()):
            problem = host_url_problem(url)
            if problem is not None:
                raise ValueError(f"hosts[{position}] {problem}")
        return hosts

    @field_validator("index")
    @classmethod
    def _check_index(cls, index: str | None) -> str | None:
        problem = None if index is None else index_name_problem(index)
        if problem is not None:
            raise ValueError(f"index name {problem}")
        return index

    def check_connection(self, connection: ServiceConnection) -> None:
        if not (self.hosts or connection.host):
            raise ValueError("elasticsearch needs host or custom_config.hosts")
        if connection.password is not None and not connection.username:
            raise ValueError("a password needs a username (basic authentication)")
        methods = [
            name
            for name, given in (
                ("username/password", bool(connection.username)),
                ("custom_config.api_key", self.api_key is not None),
                ("custom_config.bearer_token", self.bearer_token is not None),
            )
            if given
        ]
        if len(methods) > 1:
            raise ValueError("choose one authentication method, not " + " and ".join(methods))
        if self.hosts and connection.ssl_enabled and any(h.startswith("http://") for h in self.hosts):
            raise ValueError("ssl_enabled is true but custom_config.hosts has http:// nodes")
