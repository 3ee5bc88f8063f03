"""Pure translation of a `ServiceConnection` + `ElasticsearchConfig` into `AsyncElasticsearch` arguments.

Nodes come from `custom_config.hosts`, else from host/port (default 9200)/ssl_enabled. The client does
not retry on its own: the fleet's policy retries whole operations. With several nodes it may move a
request that could not connect on to the next node (`max_retries` = nodes - 1), which is failover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scf.schemas.configs.elasticsearch import ElasticsearchConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ErrorCode

DEFAULT_PORT = 9200


@dataclass(frozen=True)
class ClientSettings:
    nodes: tuple[str, ...]
    request_timeout: float
    kwargs: dict[str, Any] = field(repr=False)  # holds credentials: never logged
    auth_method: str = "none"


def node_urls(connection: ServiceConnection, config: ElasticsearchConfig) -> tuple[str, ...]:
    if config.hosts:
        return tuple(h.rstrip("/") for h in config.hosts)
    if not connection.host:
        raise ConfigurationError(
            "elasticsearch needs host or custom_config.hosts", code=ErrorCode.INVALID_CONFIG
        )
    host = f"[{connection.host}]" if ":" in connection.host else connection.host  # IPv6 literal
    scheme = "https" if connection.ssl_enabled else "http"
    return (f"{scheme}://{host}:{connection.port or DEFAULT_PORT}",)


def client_settings(connection: ServiceConnection, config: ElasticsearchConfig) -> ClientSettings:
    nodes = node_urls(connection, config)
    timeout = config.request_timeout or connection.connection_timeout
    kwargs: dict[str, Any] = {
        "hosts": list(nodes),
        "request_timeout": timeout,
        "max_retries": len(nodes) - 1,
        "retry_on_timeout": False,  # a timed-out write may have happened: the fleet decides
        "retry_on_status": (),
        "connections_per_node": connection.connection_pool_size,
        "http_compress": config.http_compress,
    }
    if any(url.startswith("https://") for url in nodes):
        kwargs["verify_certs"] = config.verify_certs
        if config.ca_certs is not None:
            kwargs["ca_certs"] = config.ca_certs
        if not config.verify_certs:
            kwargs["ssl_show_warn"] = False  # the connector logs it once at open instead
    elif config.ca_certs is not None:
        raise ConfigurationError(
            "custom_config.ca_certs is set but no node uses https://", code=ErrorCode.INVALID_CONFIG
        )
    method = "none"
    password = connection.secret_password()
    if connection.username:
        kwargs["basic_auth"] = (connection.username, password or "")
        method = "basic"
    elif config.api_key is not None:
        kwargs["api_key"] = config.api_key.get_secret_value()
        method = "api_key"
    elif config.bearer_token is not None:
        kwargs["bearer_auth"] = config.bearer_token.get_secret_value()
        method = "bearer"
    return ClientSettings(nodes=nodes, request_timeout=timeout, kwargs=kwargs, auth_method=method)
