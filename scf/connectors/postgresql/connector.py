"""`PostgreSQLOutputConnector`: an asyncpg pool per connector serving query, insert, update and delete.

This module owns the pool's life (open, check, close, stats) and routes each operation to
`operations.py`; SQL building, identifier checks and value coercion live in their own pure modules.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import asyncpg
import structlog
from asyncpg.pool import PoolAcquireContext

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.operation_table import (
    IDEMPOTENT_WRITE,
    PAGED_READ,
    WRITE,
    Call,
    NoData,
    NoParameters,
    Operation,
    table,
)
from scf.connectors.postgresql.catalog import Catalog, Conn
from scf.connectors.postgresql.coercion import json_text
from scf.connectors.postgresql.errors import POSTGRES_ERROR_RULES, refine
from scf.connectors.postgresql.guard import check_query
from scf.connectors.postgresql.ledger import Ledger
from scf.connectors.postgresql.operations import (
    Plan,
    plan_delete,
    plan_insert,
    plan_transaction,
    plan_update,
    run_write,
)
from scf.connectors.postgresql.query import run_query
from scf.connectors.postgresql.requests import (
    FILTER_ALIASES,
    INSERT_ALIASES,
    QUERY_ALIASES,
    InsertData,
    InsertParameters,
    QueryParameters,
    TransactionData,
    UpdateData,
    WriteParameters,
)
from scf.connectors.postgresql.session import SessionConnection, reset_session
from scf.connectors.postgresql.settings import pool_settings
from scf.connectors.result_cache import cache_key
from scf.schemas.configs.postgresql import PostgresConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import (
    ConfigurationError,
    ConnectorError,
    ErrorCode,
    PermanentError,
    SecurityError,
    TransientError,
)
from scf.schemas.operation import OperationOutcome, TestVerdict, request_digest

log = structlog.get_logger(__name__)

#: How long `close()` waits for borrowed connections to come back before terminating them.
CLOSE_TIMEOUT = 10.0

_SCHEMA_USAGE_SQL = (
    "SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE') AS usage "
    "FROM pg_catalog.pg_namespace n WHERE n.nspname = $1"
)

_Run = Callable[[Conn], Awaitable[OperationOutcome]]

#: A pooled connection found dead on use (the pool discards it when it comes back closed).
STALE_CONNECTION = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ConnectionFailureError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionResetError,
    BrokenPipeError,
)


class PostgreSQLOutputConnector(ServiceConnector):
    """PostgreSQL through an asyncpg pool (`min_size=1`, `max_size` from the configuration).

    Raises `transient` (connection lost, timeouts, deadlocks, serialization failures), `resource` (no
    free server connections), `permanent` (bad requests, unknown tables/columns, constraint violations,
    values that do not fit), `configuration` (bad DSN, unknown database or schema) and `security`
    (authentication, privileges) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.POSTGRESQL
    durable_idempotency: ClassVar[bool] = True
    error_rules: ClassVar[tuple[ErrorRule, ...]] = POSTGRES_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: PostgresConfig = self.config_of(PostgresConfig)
        self._settings = pool_settings(connection, self.config)
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._catalog = Catalog(self.config.schema_)
        self._ledger = Ledger(self.config.schema_, self.config.idempotency_table, self.config.idempotency_ttl)
        self._opened_total = 0

    def translate(self, exc: BaseException) -> ConnectorError:
        return refine(super().translate(exc), exc)

    def pool_stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(opened_total=self._opened_total)
        size = pool.get_size()
        return PoolStats(size=size, in_use=size - pool.get_idle_size(), opened_total=self._opened_total)

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        settings = self._settings
        try:
            self._pool = await asyncpg.create_pool(
                min_size=settings.min_size,
                max_size=settings.max_size,
                command_timeout=settings.command_timeout,
                init=self._init_connection,
                reset=reset_session,
                connection_class=SessionConnection,
                **settings.connect,
            )
        except (asyncpg.InterfaceError, ssl.SSLCertVerificationError):
            raise  # both are ValueErrors too: the error table classifies them
        except ValueError as exc:  # asyncpg lets int()/urllib errors of a malformed DSN escape as-is
            raise ConfigurationError(
                "invalid connection settings", code=ErrorCode.INVALID_CONFIG, detail=type(exc).__name__
            ) from exc

    async def _init_connection(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        """Runs once per new server connection: counts it and decodes JSON columns into objects."""
        self._opened_total += 1
        for type_name in ("json", "jsonb"):
            await conn.set_type_codec(type_name, schema="pg_catalog", encoder=json_text, decoder=json.loads)

    async def _check(self) -> dict[str, TestVerdict]:
        schema = self.config.schema_
        async with self._acquire() as conn:
            row = await conn.fetchrow(_SCHEMA_USAGE_SQL, schema, timeout=self.connection.connection_timeout)
        if row is None:
            raise ConfigurationError(f"schema {schema!r} does not exist", code=ErrorCode.INVALID_CONFIG)
        if not row["usage"]:
            raise SecurityError(f"no USAGE privilege on schema {schema!r}", code=ErrorCode.PERMISSION_DENIED)
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        self._catalog.clear()
        self._ledger.forget()
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("postgres_pool_terminated", service_name=self.service_name, waited=CLOSE_TIMEOUT)
            pool.terminate()

    def _acquire(self) -> PoolAcquireContext[asyncpg.Record]:
        if self._pool is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        return self._pool.acquire(timeout=self.connection.connection_timeout)

    # --- operations ---------------------------------------------------------------------------------

    async def _query(self, call: Call[NoData, QueryParameters]) -> OperationOutcome:
        params, request = call.parameters, call.request
        max_rows, writable = self.config.max_rows, self.config.allow_writes_in_query
        await check_query(params.query, writable=writable)  # before a connection or the cache
        timeout = self.time_left(request.timeout)

        def run(conn: Conn) -> Awaitable[OperationOutcome]:
            return run_query(conn, params, request.page_token, max_rows, writable, timeout)

        if params.cache_ttl is None:
            return await self._on_connection(call, run)
        if writable:
            raise PermanentError(
                "cache_ttl needs a read-only connector (custom_config.allow_writes_in_query is true)",
                code=ErrorCode.INVALID_REQUEST,
            )
        key = cache_key(
            params.query, params.query_params, params.page_size, params.page_key, request.page_token, max_rows
        )
        cache = self.bindings.cache
        hit = await cache.get(self.service_name, key)
        if hit is not None:
            outcome = OperationOutcome.model_validate(hit)
            return outcome.model_copy(update={"result_data": {**outcome.result_data, "cached": True}})
        outcome = await self._on_connection(call, run)
        await cache.put(self.service_name, key, outcome.model_dump(mode="json"), params.cache_ttl)
        return outcome.model_copy(update={"result_data": {**outcome.result_data, "cached": False}})

    async def _insert(self, call: Call[InsertData, InsertParameters]) -> OperationOutcome:
        return await self._write(call, plan_insert(call.data, call.parameters, self._catalog, self._ledger))

    async def _update(self, call: Call[UpdateData, WriteParameters]) -> OperationOutcome:
        return await self._write(call, plan_update(call.data, call.parameters, self._catalog, self._ledger))

    async def _delete(self, call: Call[NoData, WriteParameters]) -> OperationOutcome:
        return await self._write(call, plan_delete(call.parameters, self._catalog, self._ledger))

    async def _transaction(self, call: Call[TransactionData, NoParameters]) -> OperationOutcome:
        rows = self.operation_table
        return await self._write(call, plan_transaction(call.data.steps, rows, self._catalog, self._ledger))

    operation_table: ClassVar[Mapping[str, Operation[Any]]] = table(
        Operation(
            "query",
            _query,
            parameters=QueryParameters,
            traits=PAGED_READ,
            summary="run one read (SELECT, VALUES, ...) with bound query_params; paged by page_size",
            aliases=QUERY_ALIASES,
        ),
        Operation(
            "insert",
            _insert,
            data=InsertData,
            parameters=InsertParameters,
            traits=WRITE,
            summary="insert records (or columns + rows) into parameters.table, batch_size rows a statement",
            aliases=INSERT_ALIASES,
        ),
        Operation(
            "update",
            _update,
            data=UpdateData,
            parameters=WriteParameters,
            traits=IDEMPOTENT_WRITE,
            summary="set data.values on the rows of parameters.table that match parameters.filters",
            aliases=FILTER_ALIASES,
        ),
        Operation(
            "delete",
            _delete,
            parameters=WriteParameters,
            traits=IDEMPOTENT_WRITE,
            summary="delete the rows of parameters.table that match parameters.filters",
            aliases=FILTER_ALIASES,
        ),
        Operation(
            "transaction",
            _transaction,
            data=TransactionData,
            traits=WRITE,
            summary="data.steps (inserts, updates, deletes) in one transaction: all commit or none",
        ),
    )

    async def _write(self, call: Call[Any, Any], plan: Plan) -> OperationOutcome:
        request = call.request
        key = request.idempotency_key
        digest = "" if key is None else request_digest(request)
        timeout = self.time_left(request.timeout)
        apply = plan(timeout)
        return await self._on_connection(
            call,
            lambda conn: run_write(conn, apply, timeout, self._ledger, self.service_name, key, digest),
        )

    async def _on_connection(self, call: Call[Any, Any], run: _Run) -> OperationOutcome:
        """Run on a pooled connection. A pooled connection the server dropped (a restart, an idle
        timeout) is discarded and the call run once more on a fresh one, when that cannot repeat an
        effect: a read, or a keyed write (its ledger turns a repeat into a replay)."""
        try:
            return await self._on_one_connection(call, run)
        except STALE_CONNECTION as exc:
            request = call.request
            if request.operation != "query" and request.idempotency_key is None:
                raise
            log.info(
                "postgres_stale_connection_retried", service_name=self.service_name, error=type(exc).__name__
            )
            return await self._on_one_connection(call, run)

    async def _on_one_connection(self, call: Call[Any, Any], run: _Run) -> OperationOutcome:
        async with self._acquire() as conn:
            try:
                return await run(conn)
            except asyncpg.PostgresError as exc:
                self._forget_changed(call, exc)
                raise

    def _forget_changed(self, call: Call[Any, Any], exc: asyncpg.PostgresError) -> None:
        """A table may have changed under the cached definition (or the ledger may have been dropped)."""
        table_name = getattr(call.parameters, "table", None)
        if isinstance(table_name, str):
            self._catalog.forget(table_name)
        if call.request.operation == "transaction":
            self._catalog.clear()
        if isinstance(exc, asyncpg.UndefinedTableError):
            self._ledger.forget()
