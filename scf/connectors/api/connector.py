"""`ApiIngestionConnector`: one guarded, pooled httpx client per connector, serving ingest/preview/validate.

This module owns the client's life (open builds TLS, guard and credentials, then probes the base URL;
check probes again; close releases the pool) and plans each operation (parse, resolve the endpoint,
decide whether credentials go along) before handing it to `operations.py`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import structlog

from scf.connectors.api.auth import build_authenticator, tls_files
from scf.connectors.api.exchange import ApiCall, ApiExchange
from scf.connectors.api.oauth2 import TokenFetcher
from scf.connectors.api.operations import Plan, run_ingest, run_preview, run_validate
from scf.connectors.api.requests import (
    PREVIEW_ALIASES,
    REQUEST_ALIASES,
    ApiData,
    CallParameters,
    PagedCallParameters,
    PreviewParameters,
)
from scf.connectors.api.settings import (
    MAX_TOKEN_REPLY_BYTES,
    ApiSettings,
    api_settings,
    endpoint_url,
    guard_policy,
    same_origin,
)
from scf.connectors.api.tokens import decode
from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.operation_table import PAGED_READ, READ, Call, Operation, table
from scf.connectors.web.bodies import FetchedBody
from scf.connectors.web.client import GuardedClient
from scf.connectors.web.errors import HTTP_ERROR_RULES, translate_transport_error
from scf.connectors.web.policy import Resolver, safe_url
from scf.connectors.web.redaction import Redactor
from scf.connectors.web.transport import default_ssl_context
from scf.schemas.configs.api import ApiConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationOutcome, TestVerdict

log = structlog.get_logger(__name__)

_Run = Callable[[ApiExchange, Plan, float], Awaitable[OperationOutcome]]


def _runs(runner: _Run) -> Callable[[ApiIngestionConnector, Call[Any, Any]], Awaitable[OperationOutcome]]:
    async def handler(connector: ApiIngestionConnector, call: Call[Any, Any]) -> OperationOutcome:
        return await connector.run(call, runner)

    return handler


class ApiIngestionConnector(ServiceConnector):
    """HTTP APIs through httpx, behind the SSRF guard.

    Raises `transient` (cannot resolve or connect, timeouts, HTTP 5xx), `resource` (HTTP 429, 503 with
    Retry-After; both carry retry_after), `permanent` (bad requests, HTTP 4xx, replies that are not
    JSON or lack records, size and redirect caps), `configuration` (TLS files or verification) and
    `security` (HTTP 401/403, refused credentials or client certificates, SSRF refusals).
    """

    service_type: ClassVar[ServiceType] = ServiceType.API
    operation_table: ClassVar[Mapping[str, Operation[Any]]] = table(
        Operation(
            "ingest",
            _runs(run_ingest),
            ApiData,
            PagedCallParameters,
            PAGED_READ,
            "every page of JSON records from parameters.endpoint (within max_pages, max_records, page_size)",
            REQUEST_ALIASES,
        ),
        Operation(
            "preview",
            _runs(run_preview),
            ApiData,
            PreviewParameters,
            PAGED_READ,
            "the first page_size records and their fields",
            PREVIEW_ALIASES,
        ),
        Operation(
            "validate",
            _runs(run_validate),
            ApiData,
            CallParameters,
            READ,
            "one page: is it JSON, are there records at records_path, which fields, is there a next page",
            REQUEST_ALIASES,
        ),
    )
    error_rules: ClassVar[tuple[ErrorRule, ...]] = HTTP_ERROR_RULES

    def __init__(self, connection: ServiceConnection, *, resolver: Resolver | None = None) -> None:
        super().__init__(connection)
        self.config: ApiConfig = self.config_of(ApiConfig)
        config = self.config
        self.settings: ApiSettings = api_settings(connection, config)
        self._policy = guard_policy(config, resolver)
        self._exchange: ApiExchange | None = None
        self._in_flight = 0
        self._opened_total = 0

    def translate(self, exc: BaseException) -> ConnectorError:
        return translate_transport_error(exc)

    def pool_stats(self) -> PoolStats:
        if self._exchange is None:
            return PoolStats(opened_total=self._opened_total)
        return PoolStats(
            size=self.settings.limits.max_connections or 0,
            in_use=self._in_flight,
            opened_total=self._opened_total + self._exchange.client.backend.connections_opened,
        )

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        client = GuardedClient(self._policy, ssl_context=self._ssl_context(), limits=self.settings.limits)
        try:
            auth = build_authenticator(self.config.auth, self.connection, self._token_fetcher(client))
        except Exception:  # e.g. a JWT key that does not load: nothing else will close this client
            await client.aclose()
            raise
        redact = Redactor([*auth.secrets(), *self.settings.secret_headers.values()])
        self._exchange = ApiExchange(client, self.settings, auth, redact, self.service_name)
        if not self.config.verify_tls:
            log.warning("api_tls_unverified", service_name=self.service_name)
        if self.settings.health_url is not None:  # an unreachable or refusing API fails here
            status = await self._probe()
            log.info(
                "api_connected",
                service_name=self.service_name,
                url=safe_url(self.settings.health_url),
                status=status,
                auth=auth.method,
            )

    async def _check(self) -> dict[str, TestVerdict]:
        if self.settings.health_url is None:
            return {
                "connection_test": "skipped",
                "authentication_test": "skipped",
                "permissions_test": "skipped",
            }
        status = await self._probe()
        authenticated = self._exchange is not None and self._exchange.auth.method != "none"
        return {
            "connection_test": "passed",
            "authentication_test": "passed" if authenticated else "skipped",
            "permissions_test": "passed" if 200 <= status < 300 else "skipped",
        }

    async def _close(self) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            self._opened_total += exchange.client.backend.connections_opened
            await exchange.client.aclose()

    def _ssl_context(self) -> ssl.SSLContext:
        files = tls_files(self.config.auth)
        try:
            return default_ssl_context(
                verify=self.config.verify_tls,
                ca_file=self.config.ca_file,
                cert_file=files.cert_file if files else None,
                key_file=files.key_file if files else None,
                key_password=files.key_password if files else None,
            )
        except (OSError, ssl.SSLError) as exc:  # unreadable file, key not matching the certificate, ...
            raise ConfigurationError(
                "cannot load the TLS files (custom_config.ca_file or the mtls certificate and key)",
                code=ErrorCode.INVALID_CONFIG,
                detail=f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}",
            ) from None

    def _token_fetcher(self, client: GuardedClient) -> TokenFetcher:
        async def fetch_token(url: str, form: dict[str, str], headers: dict[str, str]) -> FetchedBody:
            request = client.build_request("POST", url, data=form, headers=headers)
            deadline = asyncio.get_running_loop().time() + self._budget(None)
            return await client.send(
                request,
                max_bytes=MAX_TOKEN_REPLY_BYTES,
                timeout=self.settings.timeout,
                deadline=deadline,
                follow_redirects=False,
                sensitive_headers=("authorization",),
            )

        return fetch_token

    async def _probe(self) -> int:
        """GET the health URL with credentials. Any reply proves the API is there, except refusals
        (401/403), throttling (429) and server failures (5xx), which raise their typed errors."""
        exchange = self._live()
        assert self.settings.health_url is not None
        call = ApiCall("GET", self.settings.health_url, credentials=True)
        deadline = asyncio.get_running_loop().time() + self._budget(None)
        reply = await exchange.reply(call, deadline)
        if reply.status_code in (401, 403, 429) or reply.status_code >= 500:
            raise exchange.error(call, reply)
        return reply.status_code

    def _live(self) -> ApiExchange:
        if self._exchange is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        return self._exchange

    # --- operations ---------------------------------------------------------------------------------

    async def run(self, call: Call[Any, Any], runner: _Run) -> OperationOutcome:
        """Plan (resolve the endpoint, before any I/O), then run within total_timeout and the deadline."""
        plan = self._plan(call)
        deadline = asyncio.get_running_loop().time() + self._budget(call.request.timeout)
        self._in_flight += 1
        try:
            async with asyncio.timeout_at(deadline):
                return await runner(self._live(), plan, deadline)
        finally:
            self._in_flight -= 1

    def _plan(self, call: Call[Any, Any]) -> Plan:
        data: ApiData = call.data
        params: CallParameters = call.parameters
        if data.body is not None and params.method != "POST":
            raise PermanentError(
                "data.body (a JSON body) needs parameters.method POST", code=ErrorCode.INVALID_REQUEST
            )
        url = endpoint_url(self.settings, params.endpoint)
        if params.query:
            url = url.copy_merge_params(params.query)
        credentials = same_origin(url, self.settings.base_url)
        if not credentials and self._has_credentials():
            raise PermanentError(
                "parameters.endpoint is outside custom_config.base_url's origin; "
                "this connector's credentials only go there",
                code=ErrorCode.INVALID_REQUEST,
            )
        resume = None if call.page_token is None else decode(call.page_token)
        if resume is not None and not same_origin(resume.url, url):
            raise PermanentError(
                "page_token leads outside the endpoint's origin", code=ErrorCode.INVALID_REQUEST
            )
        return Plan(
            first=ApiCall(
                params.method,
                url if resume is None else resume.url,
                dict(params.headers),
                data.body,
                credentials,
            ),
            records_path=params.records_path or self.settings.records_path,
            pagination=params.pagination_spec(self.settings.pagination),
            max_pages=min(params.max_pages or self.settings.max_pages, self.settings.max_pages),
            max_records=self._max_records(params),
            resume=resume,
        )

    def _max_records(self, params: CallParameters) -> int:
        """The records one call returns: max_records, then page_size (preview: preview_records)."""
        most = min(params.max_records or self.settings.max_records, self.settings.max_records)
        if isinstance(params, PreviewParameters):
            return min(params.page_size or self.settings.preview_records, most)
        if isinstance(params, PagedCallParameters):
            return min(params.page_size or most, most)
        return most

    def _budget(self, limit: float | None) -> float:
        """Seconds an exchange may take: total_timeout (or `limit`), within the request's deadline."""
        total = self.settings.total_timeout
        return self.time_left(total if limit is None else min(total, limit))

    def _has_credentials(self) -> bool:
        return bool(self.config.auth is not None or self.connection.username or self.settings.secret_headers)
