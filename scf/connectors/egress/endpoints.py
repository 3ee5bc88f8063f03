"""Where each built-in connector type connects: its endpoints (host, port), read from the same fields and
defaults its driver settings use (scf/connectors/<type>/settings.py), without importing any driver.

`connection_endpoints` covers a whole connection: the primary and every failover host. Types that read
files by URL (csv, pdf) have no endpoint of their own: the SSRF guard checks each URL. A type this
module does not know (a plugin) is judged by the connection's host and port when it has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel

from scf.connectors.egress.rules import Endpoint
from scf.schemas.configs import parse_type_config
from scf.schemas.connection import ServiceConnection

PG_PORT, REDIS_PORT, ES_PORT, QDRANT_PORT = 5432, 6379, 9200, 6333
AMQP_PORT, AMQPS_PORT = 5672, 5671
MAX_DSN_HOSTS = 16
_SCHEME_PORTS = {"http": 80, "https": 443}


def connection_endpoints(connection: ServiceConnection) -> list[Endpoint]:
    """Every endpoint of `connection`: its primary's and each failover host's, without repeats."""
    found: dict[Endpoint, None] = {}
    for each in connection.endpoints():
        for endpoint in endpoints_of(connection.service_type, each.custom_config, each):
            found[endpoint] = None
    return list(found)


def endpoints_of(
    service_type: str,
    config: Mapping[str, Any] | BaseModel | None,
    connection: ServiceConnection | None = None,
) -> list[Endpoint]:
    """The endpoints one connector instance connects to; `connection` supplies host/port/ssl_enabled.

    ValueError when `config` does not validate as the type's model (a create refuses it earlier).
    """
    if connection is None:  # unvalidated on purpose: a bare config, its host rules not in play
        connection = ServiceConnection.model_construct(service_type=service_type, service_name="egress-probe")
    model = parse_type_config(service_type, dict(config)) if isinstance(config, Mapping) else config
    reader = _READERS.get(service_type)
    if reader is None:
        return [Endpoint(connection.host, connection.port or 0)] if connection.host else []
    return reader(connection, model)


def _field(model: BaseModel | None, name: str) -> Any:
    return getattr(model, name, None)


def _secret(model: BaseModel | None, name: str) -> str | None:
    value = _field(model, name)
    if value is None:
        return None
    return str(value.get_secret_value()) if hasattr(value, "get_secret_value") else str(value)


def _url_endpoint(url: str, default_port: int | None = None) -> Endpoint:
    parts = urlsplit(url)
    port = parts.port or default_port or _SCHEME_PORTS.get(parts.scheme, 0)
    return Endpoint(parts.hostname or "", port)


def _postgresql(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    specs: list[tuple[str, int | None]] = []
    dsn = _secret(model, "connection_string")
    if dsn:
        specs = _dsn_hosts(dsn)
    if connection.host:
        specs = [(connection.host, None)]
    if not specs:  # asyncpg falls back to PGHOST, a local socket, then localhost
        specs = [("localhost", None)]
    return [Endpoint(host, connection.port or port or PG_PORT) for host, port in specs]


def _dsn_hosts(dsn: str) -> list[tuple[str, int | None]]:
    """The host specs of a postgresql:// DSN as asyncpg reads them (netloc hosts, else `?host=`)."""
    parts = urlsplit(dsn)
    hostlist = parts.netloc.rpartition("@")[2]
    query = parse_qs(parts.query, max_num_fields=64)
    if not hostlist and query.get("host"):
        hostlist = query["host"][-1]
    ports = [p for p in (query.get("port") or [""])[-1].split(",") if p]
    specs: list[tuple[str, int | None]] = []
    for position, spec in enumerate(hostlist.split(",", MAX_DSN_HOSTS)[:MAX_DSN_HOSTS]):
        host, port = _host_port(unquote(spec))
        if port is None and position < len(ports) and ports[position].isdigit():
            port = int(ports[position][:5])
        if host:
            specs.append((host, port))
    return specs


def _host_port(spec: str) -> tuple[str, int | None]:
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
    else:
        host, port_text = spec, ""
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else None
    return host, port


def _redis(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    url = _secret(model, "url")
    if url:  # the driver settings take the URL's address over the connection's (failover included)
        return [_url_endpoint(url, REDIS_PORT)]
    return [Endpoint(connection.host, connection.port or REDIS_PORT)] if connection.host else []


def _rabbitmq(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    url = _secret(model, "url")
    if url:
        parts = urlsplit(url)
        tls = parts.scheme == "amqps"
        host = connection.host or parts.hostname or ""
        port = connection.port or parts.port
    else:
        tls, host, port = connection.ssl_enabled, connection.host or "", connection.port
    return [Endpoint(host, port or (AMQPS_PORT if tls else AMQP_PORT))] if host else []


def _elasticsearch(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    hosts = _field(model, "hosts")
    if hosts:
        return [_url_endpoint(url, ES_PORT) for url in hosts]
    return [Endpoint(connection.host, connection.port or ES_PORT)] if connection.host else []


def _minio(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    secure = _field(model, "secure")
    default = 443 if (connection.ssl_enabled if secure is None else secure) else 80
    endpoint = _field(model, "endpoint")
    if endpoint:
        host, port = _host_port(endpoint)
        return [Endpoint(host, port or default)]
    return [Endpoint(connection.host, connection.port or default)] if connection.host else []


def _qdrant(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    url = _field(model, "url")
    if url:
        found = [_url_endpoint(url, QDRANT_PORT)]
    elif connection.host:
        found = [Endpoint(connection.host, connection.port or QDRANT_PORT)]
    else:
        return []  # local mode (`path`): no network
    if _field(model, "prefer_grpc"):
        found.append(Endpoint(found[0].host, int(_field(model, "grpc_port"))))
    return found


def _api(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    base_url = _field(model, "base_url")
    if base_url:
        return [_url_endpoint(base_url)]
    if not connection.host:
        return []  # requests name absolute URLs: the SSRF guard checks each
    return [Endpoint(connection.host, connection.port or (443 if connection.ssl_enabled else 80))]


def _none(connection: ServiceConnection, model: BaseModel | None) -> list[Endpoint]:
    return []


_READERS: dict[str, Callable[[ServiceConnection, BaseModel | None], list[Endpoint]]] = {
    "postgresql": _postgresql,
    "redis": _redis,
    "rabbitmq": _rabbitmq,
    "elasticsearch": _elasticsearch,
    "minio": _minio,
    "qdrant": _qdrant,
    "api": _api,
    "csv": _none,
    "pdf": _none,
}
