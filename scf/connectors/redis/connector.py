"""`RedisConnector`: one redis.asyncio client over a blocking connection pool, per connector.

This module owns the pool's life (open with PING, check with PING and a harmless EXISTS inside the
prefix, close) and gives each operation its `Context`; the base parses `data` and `parameters` against
the operation's row. The operations and their rows live in the family modules, the error table in
`errors.py`, the pure rules in `keys.py`, `codec.py` and `bounds.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.operation_table import Call, Operation
from scf.connectors.redis.context import Context, Run
from scf.connectors.redis.errors import REDIS_ERROR_RULES, refine
from scf.connectors.redis.keys import KeySpace
from scf.connectors.redis.operations import OPERATIONS
from scf.connectors.redis.settings import pool_settings
from scf.schemas.configs.redis import RedisConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConnectorError, ErrorCode, TransientError
from scf.schemas.operation import OperationOutcome, TestVerdict

log = structlog.get_logger(__name__)

#: The key `check` asks about (EXISTS, read-only): proves the user may touch keys under the prefix.
PROBE_KEY = "__scf_probe__"


class RedisConnector(ServiceConnector):
    """Redis 6/7 (standalone) through redis-py's asyncio client: strings, hashes, lists, sets, sorted
    sets, streams, pub/sub publishing, sessions and SCAN, every key under the connector's prefix.

    Raises `transient` (cannot connect, timeouts, loading, read-only replica), `resource` (maxclients,
    the pool busy, out of memory), `permanent` (bad requests, WRONGTYPE, values over the size limit,
    refused commands), `configuration` (a missing database index, TLS trouble) and `security`
    (authentication, ACL refusals) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.REDIS
    operation_table: ClassVar[Mapping[str, Operation[Any]]] = OPERATIONS
    error_rules: ClassVar[tuple[ErrorRule, ...]] = REDIS_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: RedisConfig = self.config_of(RedisConfig)
        self.keys = KeySpace(self.config.prefix_for(connection.service_name))
        self._settings = pool_settings(connection, self.config)
        self._client: Redis | None = None
        self._connections_opened = 0
        self._in_flight = 0

    def translate(self, exc: BaseException) -> ConnectorError:
        return refine(super().translate(exc), exc)

    def pool_stats(self) -> PoolStats:
        size = self._settings.max_connections if self._client is not None else 0
        return PoolStats(size=size, in_use=self._in_flight, opened_total=self._connections_opened)

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        pool = BlockingConnectionPool(
            connection_class=SSLConnection if self._settings.tls else Connection,
            max_connections=self._settings.max_connections,
            timeout=self._settings.wait_timeout,
            retry=Retry(NoBackoff(), 0),  # the factory retries, inside the deadline, by category
            redis_connect_func=self._on_connect,
            **self._settings.kwargs,
        )
        self._client = Redis(connection_pool=pool)
        await self._client.ping()  # an unreachable server or refused credentials fail here, at open
        log.info("redis_connected", service_name=self.service_name, where=self._settings.where)

    async def _on_connect(self, connection: Connection) -> None:
        await connection.on_connect()
        self._connections_opened += 1

    async def _check(self) -> dict[str, TestVerdict]:
        client = self._require_client()
        await client.ping()
        await client.exists(self.keys.key(PROBE_KEY))
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose(close_connection_pool=True)

    def _require_client(self) -> Redis:
        if self._client is None:
            raise TransientError("the connector is closed", code=ErrorCode.CONNECTION_FAILED)
        return self._client

    # --- operations ---------------------------------------------------------------------------------

    async def run_in_context(self, call: Call[Any, Any], run: Run) -> OperationOutcome:
        """Run one parsed call (see `context.row`) with the client, the key space and its budget."""
        context = Context(
            client=self._require_client(),
            keys=self.keys,
            config=self.config,
            decode=getattr(call.parameters, "decode", "text"),
            budget=self.time_left(call.request.timeout),
            socket_timeout=self._settings.socket_timeout,
            page_token=call.page_token,
        )
        self._in_flight += 1
        try:
            return await run(context)
        finally:
            self._in_flight -= 1
