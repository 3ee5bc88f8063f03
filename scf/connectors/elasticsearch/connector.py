"""`ElasticsearchConnector`: one `AsyncElasticsearch` client per connector, serving ten operations.

This module owns the client's life (open with a cheap `info()` call, check cluster health, close) and
routes each operation, after parsing and name checks, to `indices.py`, `documents.py` or `search.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import ClassVar

import structlog
from elastic_transport import ApiError
from elasticsearch import AsyncElasticsearch, UnsupportedProductError

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.elasticsearch.documents import run_delete, run_get, run_insert, run_update
from scf.connectors.elasticsearch.errors import ELASTICSEARCH_ERROR_RULES, classify_api_error
from scf.connectors.elasticsearch.indices import run_create_index, run_delete_index, run_list_indices
from scf.connectors.elasticsearch.names import check_index, check_index_target
from scf.connectors.elasticsearch.requests import (
    AggregateParameters,
    CountParameters,
    CreateIndexParameters,
    DeleteIndexParameters,
    DeleteParameters,
    GetParameters,
    InsertData,
    InsertParameters,
    ListIndicesParameters,
    SearchParameters,
    UpdateData,
    UpdateParameters,
    parse,
)
from scf.connectors.elasticsearch.search import run_aggregate, run_count, run_search
from scf.connectors.elasticsearch.settings import client_settings
from scf.connectors.sources import time_left
from scf.schemas.configs.elasticsearch import ElasticsearchConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict

log = structlog.get_logger(__name__)

_Run = Callable[[AsyncElasticsearch], Awaitable[OperationOutcome]]


class ElasticsearchConnector(ServiceConnector):
    """Elasticsearch 8.x/9.x through elasticsearch-py's async client (aiohttp, one pool per node).

    Raises `transient` (cannot connect, timeouts, HTTP 5xx, a red cluster), `resource` (HTTP 429,
    bulk items rejected for load), `permanent` (bad requests and names, version conflicts, missing
    documents, documents the mapping refuses), `configuration` (missing index, TLS trouble, a server
    that is not Elasticsearch) and `security` (HTTP 401/403) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.ELASTICSEARCH
    operations: ClassVar[frozenset[str]] = frozenset(
        {
            "create_index",
            "delete_index",
            "list_indices",
            "insert",
            "get",
            "update",
            "delete",
            "search",
            "aggregate",
            "count",
        }
    )
    error_rules: ClassVar[tuple[ErrorRule, ...]] = ELASTICSEARCH_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        config = self.type_config
        if not isinstance(config, ElasticsearchConfig):  # pragma: no cover - the registry guarantees it
            raise ConfigurationError("elasticsearch connector without an ElasticsearchConfig")
        self.config: ElasticsearchConfig = config
        self._settings = client_settings(connection, self.config)
        self._client: AsyncElasticsearch | None = None
        self._opened_total = 0
        self._in_flight = 0
        self._planners: dict[str, Callable[[OperationRequest], _Run]] = {
            "create_index": self._plan_create_index,
            "delete_index": self._plan_delete_index,
            "list_indices": self._plan_list_indices,
            "insert": self._plan_insert,
            "get": self._plan_get,
            "update": self._plan_update,
            "delete": self._plan_delete,
            "search": self._plan_search,
            "aggregate": self._plan_aggregate,
            "count": self._plan_count,
        }

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
        cap = self._settings.request_timeout if limit is None else min(limit, self._settings.request_timeout)
        return time_left(cap)

    def _api(self, timeout: float | None = None) -> AsyncElasticsearch:
        if self._client is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        if timeout is None or timeout >= self._settings.request_timeout:
            return self._client
        return self._client.options(request_timeout=timeout)

    # --- operations ---------------------------------------------------------------------------------

    async def _execute(self, request: OperationRequest) -> OperationOutcome:
        run = self._plan(request)  # parse and check names before any I/O
        self._in_flight += 1
        try:
            return await run(self._api(self._timeout(request.timeout)))
        finally:
            self._in_flight -= 1

    def _plan(self, request: OperationRequest) -> _Run:
        return self._planners[request.operation](request)

    def _index(self, given: str | None) -> str:
        return check_index(self._default_index(given))

    def _target(self, given: str | list[str] | None) -> str:
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

    def _plan_create_index(self, request: OperationRequest) -> _Run:
        params = parse(CreateIndexParameters, request.parameters, "parameters")
        index = self._index(params.index)
        return lambda es: run_create_index(es, index, params)

    def _plan_delete_index(self, request: OperationRequest) -> _Run:
        params = parse(DeleteIndexParameters, request.parameters, "parameters")
        index = check_index(params.index)  # never the default index: deleting one is always explicit
        return lambda es: run_delete_index(es, index, params)

    def _plan_list_indices(self, request: OperationRequest) -> _Run:
        params = parse(ListIndicesParameters, request.parameters, "parameters")
        pattern = check_index_target(params.pattern, "parameters.pattern")
        return lambda es: run_list_indices(es, pattern, params)

    def _plan_insert(self, request: OperationRequest) -> _Run:
        data = parse(InsertData, request.data, "data")
        params = parse(InsertParameters, request.parameters, "parameters")
        index = self._index(params.index)
        key = request.idempotency_key or request.operation_id or uuid.uuid4().hex
        return lambda es: run_insert(es, index, data, params, key)

    def _plan_get(self, request: OperationRequest) -> _Run:
        params = parse(GetParameters, request.parameters, "parameters")
        index = self._index(params.index)
        return lambda es: run_get(es, index, params)

    def _plan_update(self, request: OperationRequest) -> _Run:
        data = parse(UpdateData, request.data, "data")
        params = parse(UpdateParameters, request.parameters, "parameters")
        index = self._index(params.index)
        return lambda es: run_update(es, index, data, params)

    def _plan_delete(self, request: OperationRequest) -> _Run:
        params = parse(DeleteParameters, request.parameters, "parameters")
        index = self._index(params.index)
        return lambda es: run_delete(es, index, params)

    def _plan_search(self, request: OperationRequest) -> _Run:
        params = parse(SearchParameters, request.parameters, "parameters")
        if request.page_token is not None and params.from_:
            raise PermanentError(
                "from cannot be combined with page_token: pages continue from the token",
                code=ErrorCode.INVALID_REQUEST,
            )
        target = self._target(params.index)
        return lambda es: run_search(es, target, params, request.page_token)

    def _plan_aggregate(self, request: OperationRequest) -> _Run:
        params = parse(AggregateParameters, request.parameters, "parameters")
        target = self._target(params.index)
        return lambda es: run_aggregate(es, target, params)

    def _plan_count(self, request: OperationRequest) -> _Run:
        params = parse(CountParameters, request.parameters, "parameters")
        target = self._target(params.index)
        return lambda es: run_count(es, target, params)
