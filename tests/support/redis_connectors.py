"""Redis connectors for tests: built on a claimed test database, each with its own key prefix.

`RedisBench` builds connectors and a raw client on the same database (to look at what was really stored)
and closes them all at the end; `ok` / `fails` run one operation and check its outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from scf.connectors.redis import RedisConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.operation import OperationResult
from tests.support.services import RedisDb, claim_redis_db, require


def unique_prefix(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}:"


def redis_connection(db: RedisDb, name: str = "redis_test", **fields: Any) -> ServiceConnection:
    custom = {"db": db.index, **fields.pop("custom_config", {})}
    custom.setdefault("key_prefix", unique_prefix())
    body = {"service_type": "redis", "service_name": name, "host": db.host, "port": db.port, **fields}
    return ServiceConnection.model_validate({**body, "custom_config": custom})


class RedisBench:
    """Connectors and one raw client on a claimed database; `close()` releases every one of them."""

    def __init__(self, db: RedisDb) -> None:
        self.db = db
        self.raw = Redis(host=db.host, port=db.port, db=db.index)
        self._connectors: list[RedisConnector] = []

    def connector(self, **fields: Any) -> RedisConnector:
        connector = RedisConnector(redis_connection(self.db, **fields))
        self._connectors.append(connector)
        return connector

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
        await self.raw.aclose()


async def run(
    connector: RedisConnector, operation: str, data: dict[str, Any], **fields: Any
) -> OperationResult:
    return await connector.execute_operation({"operation": operation, "data": data, **fields})


async def ok(connector: RedisConnector, operation: str, data: dict[str, Any], **fields: Any) -> Any:
    """Run an operation that must succeed; returns its `result_data`."""
    result = await run(connector, operation, data, **fields)
    assert result.status == "success", (operation, result.error)
    return result.result_data


async def fails(
    connector: RedisConnector, operation: str, data: dict[str, Any], **fields: Any
) -> tuple[str, str, str]:
    """Run an operation that must fail; returns (category, code, message)."""
    result = await run(connector, operation, data, **fields)
    assert result.status == "failed" and result.error is not None, (operation, result.result_data)
    return result.error.category.value, result.error.code, result.error.message


@pytest.fixture(scope="module")
def redis_db() -> Iterator[RedisDb]:
    require("Redis", "127.0.0.1", 6379)
    claimed = claim_redis_db()
    yield claimed
    claimed.release()


@pytest.fixture
async def bench(redis_db: RedisDb) -> AsyncIterator[RedisBench]:
    bench = RedisBench(redis_db)
    try:
        yield bench
    finally:
        await bench.close()
