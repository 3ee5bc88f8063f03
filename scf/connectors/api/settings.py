"""Pure translation of a `ServiceConnection` + `ApiConfig` into client settings, endpoints and a guard policy.

The base URL comes from `custom_config.base_url`, else from host/port/ssl_enabled. A relative
`parameters.endpoint` is appended to the base URL's path; an absolute one stands alone but only receives the
connector's credentials when it shares the base URL's origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from scf.connectors.web.policy import GuardPolicy, Resolver, parse_url, system_resolver
from scf.schemas.configs.api import ApiConfig, PaginationSpec
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.secret_fields import header_is_secret

MAX_TOKEN_REPLY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ApiSettings:
    base_url: httpx.URL | None
    health_url: httpx.URL | None
    timeout: httpx.Timeout
    total_timeout: float
    limits: httpx.Limits
    max_response_bytes: int
    follow_redirects: bool
    records_path: str
    pagination: PaginationSpec | None
    max_pages: int
    max_records: int
    preview_records: int
    headers: dict[str, str] = field(default_factory=dict)
    secret_headers: dict[str, str] = field(default_factory=dict, repr=False)  # sent to the base origin only


def base_url(connection: ServiceConnection, config: ApiConfig) -> str | None:
    if config.base_url:
        return config.base_url
    if not connection.host:
        return None
    host = f"[{connection.host}]" if ":" in connection.host else connection.host
    scheme = "https" if connection.ssl_enabled else "http"
    port = f":{connection.port}" if connection.port else ""
    return f"{scheme}://{host}{port}"


def api_settings(connection: ServiceConnection, config: ApiConfig) -> ApiSettings:
    raw_base = base_url(connection, config)
    base = httpx.URL(raw_base) if raw_base else None
    health = None
    if base is not None:
        health = join(base, config.health_path) if config.health_path else base
    timeouts = config.timeouts
    return ApiSettings(
        base_url=base,
        health_url=health,
        timeout=httpx.Timeout(
            connect=timeouts.connect or connection.connection_timeout,
            read=timeouts.read,
            write=timeouts.write,
            pool=timeouts.pool,
        ),
        total_timeout=timeouts.total,
        limits=httpx.Limits(
            max_connections=connection.connection_pool_size,
            max_keepalive_connections=connection.connection_pool_size,
        ),
        max_response_bytes=config.max_response_bytes,
        follow_redirects=config.follow_redirects,
        records_path=config.records_path,
        pagination=config.pagination,
        max_pages=config.max_pages,
        max_records=config.max_records,
        preview_records=config.preview_records,
        headers={k: v for k, v in config.headers.items() if not secret_header(k)},
        secret_headers={k: v for k, v in config.headers.items() if secret_header(k)},
    )


def secret_header(name: str) -> bool:
    """Headers are credentials unless on the safe list: sent to the base origin only, masked in errors."""
    return header_is_secret(name)


def guard_policy(config: ApiConfig, resolver: Resolver | None = None) -> GuardPolicy:
    return GuardPolicy(
        allowed_hosts=config.host_rules(),
        allow_private=config.allow_private,
        resolver=resolver or system_resolver,
        max_redirects=config.max_redirects if config.follow_redirects else 0,
    )


def join(base: httpx.URL, endpoint: str) -> httpx.URL:
    """`endpoint` appended to the base URL's path (not RFC 3986 resolution, which drops the last segment)."""
    prefix = str(base.copy_with(query=None, fragment=None)).rstrip("/")
    return httpx.URL(f"{prefix}/{endpoint.lstrip('/')}")


def endpoint_url(settings: ApiSettings, endpoint: str | None) -> httpx.URL:
    """The URL a request names: absolute, relative to the base URL, or the base URL itself."""
    if not endpoint:
        if settings.base_url is None:
            raise PermanentError(
                "parameters.endpoint is required (this connector has no custom_config.base_url)",
                code=ErrorCode.INVALID_REQUEST,
            )
        return settings.base_url
    if "://" in endpoint.split("?", 1)[0]:
        return parse_url(endpoint)
    if endpoint.startswith("//"):
        raise PermanentError(
            "parameters.endpoint must be an absolute URL or a path, not //host",
            code=ErrorCode.INVALID_REQUEST,
        )
    if settings.base_url is None:
        raise PermanentError(
            "a relative parameters.endpoint needs custom_config.base_url", code=ErrorCode.INVALID_REQUEST
        )
    try:
        return join(settings.base_url, endpoint)
    except (httpx.InvalidURL, ValueError):
        raise PermanentError(
            "parameters.endpoint is not a valid path", code=ErrorCode.INVALID_REQUEST
        ) from None


def same_origin(url: httpx.URL, other: httpx.URL | None) -> bool:
    if other is None:
        return False
    default = {"http": 80, "https": 443}
    return (url.scheme, url.host, url.port or default.get(url.scheme)) == (
        other.scheme,
        other.host,
        other.port or default.get(other.scheme),
    )
