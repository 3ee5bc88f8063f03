"""A registry entry written before secrets were masked by each type's model is re-masked when read.

Entries stored by an older fleet kept keyword-DSN passwords, `?password=` and unusual header values in
their public view. Reading one (get or list) must show them masked and replace the stored view, so the
secret no longer sits in Redis in clear; an entry changed meanwhile is not overwritten.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from scf.fleet import keys
from scf.fleet.crypto import SecretBox
from scf.fleet.state import PUBLIC_VIEW, StateStore
from scf.fleet.state_errors import text_map

CANARY = f"canary-{uuid.uuid4().hex}"


def legacy_public(name: str) -> dict[str, object]:
    """A public view as the older fleet stored it: only key names guessed as secrets were masked."""
    return {
        "service_type": "postgresql",
        "service_name": name,
        "host": None,
        "port": None,
        "database": None,
        "username": None,
        "password": "**********",
        "connection_pool_size": 5,
        "connection_timeout": 30.0,
        "retry_attempts": 3,
        "ssl_enabled": False,
        "failover_hosts": [],
        "custom_config": {"connection_string": f"host=127.0.0.1 dbname=test user=app password={CANARY}"},
        "test_on_create": True,
    }


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[StateStore]:
    state = StateStore(
        aioredis.Redis.from_url(redis_url, decode_responses=True), SecretBox([Fernet.generate_key().decode()])
    )
    try:
        yield state
    finally:
        await state.close()


async def plant(state: StateStore, name: str, version: int = 1) -> None:
    await state.redis.hset(
        keys.connector(name),
        mapping={
            "service_type": "postgresql",
            "version": version,
            "paused": "0",
            "public": json.dumps(legacy_public(name)),
            "sealed": "not-read-here",
        },
    )
    await state.redis.sadd(keys.CONNECTORS_INDEX, name)


async def test_a_legacy_entry_is_masked_when_listed_and_its_stored_view_replaced(store: StateStore) -> None:
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    await plant(store, name)
    try:
        listed = [s for s in await store.list_connectors() if s.service_name == name]
        got = await store.connector_state(name)
        stored = await store.redis.hgetall(keys.connector(name))
    finally:
        await store.delete_connector(name)

    assert len(listed) == 1
    for state in (listed[0], got):
        shown = json.dumps(state.config)
        assert CANARY not in shown
        assert "password=" in shown  # the DSN is still recognisable, only its secret masked
    assert CANARY not in json.dumps(stored)
    assert stored["view"] == PUBLIC_VIEW


async def test_an_entry_changed_meanwhile_is_not_overwritten(store: StateStore) -> None:
    """The stored view is replaced only if the version read is still current (compare and set)."""
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    await plant(store, name, version=1)
    try:
        raw = text_map(await store.redis.hgetall(keys.connector(name)))
        await store.redis.hset(
            keys.connector(name), mapping={"version": 2, "public": "{}", "view": PUBLIC_VIEW}
        )
        shown = await store._current_view(name, raw)
        stored = await store.redis.hgetall(keys.connector(name))
    finally:
        await store.delete_connector(name)

    assert CANARY not in shown["public"]
    assert stored["public"] == "{}" and stored["version"] == "2"
