"""The worker's `ConnectorCache` against a real Redis registry: it makes the registry checks a request
on the fast path no longer gets from the dispatcher (exists, not paused, version), events or not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from scf.factory import ServiceConnectorFactory
from scf.fleet.crypto import SecretBox
from scf.fleet.state import StateStore
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ConnectorError
from scf.worker.cache import ConnectorCache
from tests.support.services import claim_redis_db

pytestmark = pytest.mark.integration

BOX = SecretBox([Fernet.generate_key().decode()])


@pytest.fixture
async def state() -> AsyncIterator[StateStore]:
    claimed = claim_redis_db()
    store = StateStore(aioredis.Redis.from_url(claimed.url, decode_responses=True), BOX)
    try:
        yield store
    finally:
        await store.close()
        claimed.release()


@pytest.fixture
async def factory() -> AsyncIterator[ServiceConnectorFactory]:
    made = ServiceConnectorFactory()
    try:
        yield made
    finally:
        await made.close()


def csv(name: str, **overrides: Any) -> ServiceConnection:
    return ServiceConnection.parse({"service_type": "csv", "service_name": name, **overrides})


async def registered(state: StateStore, **overrides: Any) -> tuple[str, int]:
    name = f"cache_{uuid.uuid4().hex[:8]}"
    return name, await state.save_connector(csv(name, **overrides), create=True)


async def test_a_connector_paused_in_the_registry_is_refused_without_any_event(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    cache = ConnectorCache(factory, state, recheck_after=0.0)  # every use re-reads the entry
    name, version = await registered(state)
    assert (await cache.get(name, version)).connection.service_name == name

    await state.set_paused(name, True)  # no `connector.paused` event reaches this cache
    with pytest.raises(ConfigurationError) as caught:
        await cache.get(name, version)
    test_target = await cache.get(name, version, allow_paused=True)  # a connection test still runs
    await state.set_paused(name, False)
    resumed = await cache.get(name, version)

    assert caught.value.code == "CONNECTOR_PAUSED"
    assert test_target is resumed  # pausing never rebuilt the connector: same version, same pool


async def test_a_paused_event_makes_the_next_request_read_the_flag_at_once(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    cache = ConnectorCache(factory, state, recheck_after=3600.0)  # only the event can make it look
    name, version = await registered(state)
    await cache.get(name, version)
    await state.set_paused(name, True)
    unseen = await cache.get(name, version)  # within the re-check period, without the event: served

    await cache.on_event("paused", name)
    with pytest.raises(ConfigurationError) as caught:
        await cache.get(name, version)

    assert unseen.connection.service_name == name
    assert caught.value.code == "CONNECTOR_PAUSED"


async def test_a_newer_stamp_reloads_and_an_older_one_runs_with_the_newest_config(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    cache = ConnectorCache(factory, state, recheck_after=3600.0)
    name, first = await registered(state, connection_timeout=5)
    old = await cache.get(name, first)
    second = await state.save_connector(csv(name, connection_timeout=7), create=False)

    stale_stamp = await cache.get(name, first)  # a client routed with an older version: no reload
    new = await cache.get(name, second)  # the stamp is newer than what is loaded: reload
    late_old_stamp = await cache.get(name, first)  # ... and the old stamp now runs the new config

    assert old.connection.connection_timeout == 5
    assert stale_stamp is old
    assert new.connection.connection_timeout == 7
    assert late_old_stamp is new


async def test_an_updated_event_rebuilds_the_connector_on_its_next_use(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    cache = ConnectorCache(factory, state, recheck_after=3600.0)
    name, first = await registered(state, connection_timeout=5)
    await cache.get(name, first)
    await state.save_connector(csv(name, connection_timeout=9), create=False)

    await cache.on_event("updated", name)
    rebuilt = await cache.get(name, first)  # even under the old stamp

    assert rebuilt.connection.connection_timeout == 9


async def test_a_deleted_connector_is_not_found_and_forgotten(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    cache = ConnectorCache(factory, state, recheck_after=0.0)
    name, version = await registered(state)
    await cache.get(name, version)
    await state.delete_connector(name)

    with pytest.raises(ConfigurationError) as caught:
        await cache.get(name, version)

    assert caught.value.code == "CONNECTOR_NOT_FOUND"
    assert name not in cache.loaded()
    with pytest.raises(ConfigurationError):
        await cache.get(f"cache_never_{uuid.uuid4().hex[:8]}", 1)


async def test_a_recreated_connector_with_a_lower_version_runs_its_new_config(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    """Delete and create again restarts at version 1: a stamp of the old life (3) must not make every
    request rebuild the connector, nor run the old config."""
    cache = ConnectorCache(factory, state, recheck_after=0.0)
    name, _ = await registered(state, connection_timeout=5)
    for timeout in (6, 7):
        await state.save_connector(csv(name, connection_timeout=timeout), create=False)
    old = await cache.get(name, 3)
    await state.delete_connector(name)
    await state.save_connector(csv(name, connection_timeout=11), create=True)
    await cache.on_event("created", name)

    first = await cache.get(name, 3)
    again = await cache.get(name, 3)

    assert old.connection.connection_timeout == 7
    assert first.connection.connection_timeout == 11
    assert again is first


async def test_while_redis_is_away_a_loaded_connector_keeps_running_as_last_seen(
    state: StateStore, factory: ServiceConnectorFactory
) -> None:
    cache = ConnectorCache(factory, state, recheck_after=0.0)
    name, version = await registered(state)
    loaded = await cache.get(name, version)
    away = StateStore(
        aioredis.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=1),
        BOX,
    )
    cache.state = away  # nothing listens on port 1: every registry read fails
    try:
        kept = await cache.get(name, version)
        with pytest.raises(ConnectorError) as caught:
            await cache.get(f"cache_unloaded_{uuid.uuid4().hex[:8]}", 1)
    finally:
        await away.close()

    assert kept is loaded
    assert caught.value.code == "STATE_UNAVAILABLE"
