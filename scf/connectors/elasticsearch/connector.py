"""`ElasticsearchConnector`: one `AsyncElasticsearch` client per connector, serving the ten operations of
`operations.py`.

This module owns the client's life (open with a cheap `info()` call, check cluster health, close), the
index defaults and `run`, which hands each handler the client bounded by its request's time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import structlog
from elastic_transport import ApiError
from elasticsearch import AsyncElasticsearch, UnsupportedProductError

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.elasticsearch.errors import ELASTICSEARCH_ERROR_RULES, classify_api_error
from scf.connectors.elasticsearch.names import check_index, check_index_target
from scf.connectors.elasticsearch.operations import OPERATION_TABLE
from scf.connectors.elasticsearch.settings import client_settings
from scf.connectors.operation_table import Call
from scf.schemas.configs.elasticsearch import ElasticsearchConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import TestVerdict

log = structlog.get_logger(__name__)

Outcome = TypeVar("Outcome")


class ElasticsearchConnector(ServiceConnector):
    """Elasticsearch 8.x/9.x through elasticsearch-py's async client (aiohttp, one pool per node).

    Raises `transient` (cannot connect, timeouts, HTTP 5xx, a red cluster), `resource` (HTTP 429,
    bulk items rejected for load), `permanent` (bad requests and names, version conflicts, missing
    documents, documents the mapping refuses), `configuration` (missing index, TLS trouble, a server
    that is not Elasticsearch) and `security` (HTTP 401/403) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.ELASTICSEARCH
    operation_table = OPERATION_TABLE
    error_rules: ClassVar[tuple[ErrorRule, ...]] = ELASTICSEARCH_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: ElasticsearchConfig = self.config_of(ElasticsearchConfig)
        self._settings = client_settings(connection, self.config)
        self._client: AsyncElasticsearch | None = None
        self._opened_total = 0
        self._in_flight = 0

    def translate(self, exc: BaseException) -> ConnectorError:
        if isinstance(exc, ApiError) and not isinstance(exc, UnsupportedProductError):
            return classify_api_error(exc)
        return super().translate(exc)

    def pool_stats(self) -> PoolStats:
        size = len(self._settings.nodes) if self._client is not None else 0
        return PoolStats(size=size, in_use=self._in_flight, opened_total=self._opened_total)

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        try:
            self._client = AsyncElasticsearch(**self._settings.kwargs)
        except (ValueError, TypeError, OSError) as exc:  # bad node URL, unreadable ca_certs, ...
            raise ConfigurationError(
                f"invalid client settings: {exc}", code=ErrorCode.INVALID_CONFIG, detail=type(exc).__name__
            ) from exc
        # cheap: an unreachable or refusing cluster fails here
        info = await self._client.options(request_timeout=self._timeout()).info()
        self._opened_total += 1
        version = (info.body.get("version") or {}).get("number")
        if not self.config.verify_certs and any(n.startswith("https://") for n in self._settings.nodes):
            log.warning("elasticsearch_tls_unverified", service_name=self.service_name)
        log.info(
            "elasticsearch_connected",
            service_name=self.service_name,
            nodes=len(self._settings.nodes),
            auth=self._settings.auth_method,
            version=version,
        )

    async def _check(self) -> dict[str, TestVerdict]:
        es = self._api(self._timeout())
        health = (await es.cluster.health()).body
        status = health.get("status")
        log.info(
            "elasticsearch_health",
            service_name=self.service_name,
            status=status,
            nodes=health.get("number_of_nodes"),
            unassigned_shards=health.get("unassigned_shards"),
        )
        if status == "red":
            raise TransientError(
                f"the cluster's health is red ({health.get('unassigned_shards', '?')} unassigned shards)",
                code=ErrorCode.CONNECTION_FAILED,
            )
        verdicts: dict[str, TestVerdict] = {
            "connection_test": "passed",
            "authentication_test": "passed",
            "permissions_test": "skipped",
        }
        if self.config.index is not None:  # a 403 here fails the permissions verdict
            await es.indices.exists(index=self.config.index)
            verdicts["permissions_test"] = "passed"
        return verdicts

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _timeout(self, limit: float | None = None) -> float:
        """Seconds each call may take: the client's request_timeout (or `limit`), within the deadline."""
        cap = self._settings.request_timeout
        return self.time_left(cap if limit is None else min(limit, cap))

    def _api(self, timeout: float | None = None) -> AsyncElasticsearch:
        if self._client is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        if timeout is None or timeout >= self._settings.request_timeout:
            return self._client
        return self._client.options(request_timeout=timeout)

    # --- operations ---------------------------------------------------------------------------------

    async def run(
        self, call: Call[Any, Any], work: Callable[[AsyncElasticsearch], Awaitable[Outcome]]
    ) -> Outcome:
        """Run one operation's I/O with the client, each call bounded by the time the request has left."""
        es = self._api(self._timeout(call.request.timeout))
        self._in_flight += 1
        try:
            return await work(es)
        finally:
            self._in_flight -= 1

    def index(self, given: str | None) -> str:
        """The one concrete index a write (or a single-document read) acts on."""
        return check_index(self._default_index(given))

    def target(self, given: str | list[str] | None) -> str:
        """The indices (names or patterns) a search, count or aggregation reads."""
        return check_index_target(self._default_index(given))

    def _default_index(self, given: str | list[str] | None) -> str | list[str]:
        if given is not None:
            return given
        if self.config.index is None:
            raise PermanentError(
                "parameters.index is required (this connector has no default custom_config.index)",
                code=ErrorCode.INVALID_REQUEST,
            )
        return self.config.index
