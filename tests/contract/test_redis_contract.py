"""The Redis connector against the standard contract (a real Redis: the session's own, a claimed database).

Credentials are tested for real with ACL users this module creates and deletes: one the server refuses
for its password, one that may only GET (a SET is refused, PERMISSION_DENIED), one limited to other keys
(the connection test's permission probe fails).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from scf.connectors.redis import RedisConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import SecurityError
from scf.schemas.operation import OperationRequest
from tests.contract.suite import CANARY_SECRET, ConnectorContract
from tests.support.services import RedisDb, claim_redis_db, require

RIGHT_PASSWORD = "right-pass-" + uuid.uuid4().hex
USERS = {role: f"scf_contract_{role}_{uuid.uuid4().hex[:8]}" for role in ("full", "get_only", "elsewhere")}


@pytest.fixture(scope="module")
def redis_db() -> Iterator[RedisDb]:
    require("Redis", "127.0.0.1", 6379)
    claimed = claim_redis_db()
    yield claimed
    claimed.release()


@pytest.fixture(scope="module")
def acl_users(redis_db: RedisDb) -> Iterator[dict[str, str]]:
    admin = redis.Redis(host=redis_db.host, port=redis_db.port)
    grants: dict[str, tuple[list[str], list[str]]] = {  # role -> (key patterns, commands)
        "full": (["*"], ["+@all"]),
        "get_only": (["*"], ["+get", "+ping", "+select", "+exists"]),
        "elsewhere": (["not-this-connector:*"], ["+@all"]),
    }
    try:
        for role, name in USERS.items():
            keys, commands = grants[role]
            admin.acl_setuser(
                name, enabled=True, reset=True, passwords=[f"+{RIGHT_PASSWORD}"], keys=keys, commands=commands
            )
        yield USERS
    finally:
        admin.acl_deluser(*USERS.values())
        admin.close()


def redis_connection(db: RedisDb, **fields: Any) -> ServiceConnection:
    custom = {"db": db.index, "key_prefix": f"contract-{uuid.uuid4().hex[:8]}:"}
    body = {"service_type": "redis", "service_name": "contract_redis", "host": db.host, "port": db.port}
    body.update(fields)
    return ServiceConnection.model_validate({**body, "custom_config": custom})


class TestRedisContract(ConnectorContract):
    @pytest.fixture
    def connection(self, redis_db: RedisDb) -> ServiceConnection:
        return redis_connection(redis_db)

    @pytest.fixture
    def unreachable(self, redis_db: RedisDb) -> ServiceConnection | None:
        return redis_connection(redis_db, port=1, connection_timeout=2, retry_attempts=0)

    @pytest.fixture
    def bad_credentials(self, redis_db: RedisDb, acl_users: dict[str, str]) -> ServiceConnection | None:
        return redis_connection(redis_db, username=acl_users["full"], password=CANARY_SECRET)

    async def test_the_right_password_of_an_acl_user_is_accepted(
        self, redis_db: RedisDb, acl_users: dict[str, str]
    ) -> None:
        connector = RedisConnector(
            redis_connection(redis_db, username=acl_users["full"], password=RIGHT_PASSWORD)
        )
        try:
            result = await connector.check()
        finally:
            await connector.close()

        assert result.status == "success", result.error

    async def test_a_command_the_acl_refuses_is_permission_denied(
        self, redis_db: RedisDb, acl_users: dict[str, str]
    ) -> None:
        connector = RedisConnector(
            redis_connection(redis_db, username=acl_users["get_only"], password=RIGHT_PASSWORD)
        )
        try:
            got = await connector.execute(OperationRequest(operation="get", data={"key": "k"}))
            with pytest.raises(SecurityError) as caught:
                await connector.execute(OperationRequest(operation="set", data={"key": "k", "value": 1}))
        finally:
            await connector.close()

        assert got.result_data == {"value": None, "exists": False}
        assert caught.value.code == "PERMISSION_DENIED" and not caught.value.retryable
        # access denied, naming the endpoint and the user (never the service's own words)
        assert caught.value.to_info().message.startswith("access denied (127.0.0.1:")
        assert "user 'scf_contract_get_only_" in caught.value.to_info().message

    async def test_a_user_without_access_to_the_prefix_fails_the_permissions_test(
        self, redis_db: RedisDb, acl_users: dict[str, str]
    ) -> None:
        connector = RedisConnector(
            redis_connection(redis_db, username=acl_users["elsewhere"], password=RIGHT_PASSWORD)
        )
        try:
            result = await connector.check()
        finally:
            await connector.close()

        assert result.status == "failed"
        assert result.test_results == {
            "connection_test": "passed",
            "authentication_test": "passed",
            "permissions_test": "failed",
        }
        assert result.error is not None and result.error.code == "PERMISSION_DENIED"
