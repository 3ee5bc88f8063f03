"""The private service helpers keep their promises: a crash loses what the service would lose, no more.

PostgreSQL keeps committed rows and RabbitMQ a quorum queue's persistent messages across SIGKILL and
restart on the same port; this Redis (no persistence) comes back empty. Closing frees the port, deletes
the temp dir and leaves no process of the tree behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.private_services import (
    PrivatePostgres,
    PrivateRabbit,
    PrivateRedis,
    PrivateService,
    PrivateServiceError,
    accepts,
    alive,
    descendants,
    port_is_free,
)

pytestmark = pytest.mark.integration


def process_tree(service: PrivateService) -> set[int]:
    assert service.pid is not None
    return {service.pid} | descendants(service.pid)


def assert_closed_cleanly(port: int, folder: Path, tree: set[int]) -> None:
    assert port_is_free(port), f"port {port} is still taken"
    assert not folder.exists()
    assert not alive(tree), f"left behind: {alive(tree)}"


async def count_rows(pg: PrivatePostgres, table: str) -> int:
    conn = await asyncpg.connect(pg.dsn, timeout=5)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_private_postgres_keeps_committed_rows_across_kill_and_immediate_restart() -> None:
    with PrivatePostgres() as pg:
        port, tree = pg.port, process_tree(pg)
        assert len(tree) > 1, "the postmaster should have children (checkpointer, walwriter, ...)"
        conn = await asyncpg.connect(pg.dsn, timeout=5)
        try:
            await conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
            await conn.execute("INSERT INTO kept SELECT generate_series(1, 100)")
        finally:
            await conn.close()

        await pg.akill()
        assert not accepts(port)
        assert not alive(tree), "SIGKILL must take the whole tree, backends included"
        await pg.astart()
        assert pg.port == port
        assert await count_rows(pg, "kept") == 100

        await pg.arestart(immediate=True)
        assert await count_rows(pg, "kept") == 100
        tree = process_tree(pg)
    assert_closed_cleanly(port, pg.dir, tree)


async def test_private_redis_comes_back_empty_after_kill() -> None:
    with PrivateRedis() as server:
        port, tree = server.port, process_tree(server)
        async with aioredis.Redis.from_url(server.url) as client:
            await client.set("scf:kept?", "no")
            assert await client.get("scf:kept?") == b"no"
        await server.akill()
        assert not accepts(port)
        assert not alive(tree)
        await server.astart()
        assert server.port == port
        async with aioredis.Redis.from_url(server.url) as client:
            assert await client.dbsize() == 0  # no RDB, no AOF: nothing survives a restart
            await client.set("scf:again", "1")
        await server.arestart(immediate=False)
        async with aioredis.Redis.from_url(server.url) as client:
            assert await client.dbsize() == 0
        tree = process_tree(server)
    assert_closed_cleanly(port, server.dir, tree)


async def test_private_rabbit_keeps_a_quorum_queues_persistent_message_across_kill() -> None:
    queue_name, body = f"scf-kept-{uuid.uuid4().hex[:8]}", b"survives kill -9"
    with PrivateRabbit() as rabbit:
        port, tree = rabbit.port, process_tree(rabbit)
        url = rabbit.add_vhost("faults")
        connection = await aio_pika.connect(url, timeout=10)
        async with connection:
            channel = await connection.channel()  # publisher confirms: publish returns once stored
            queue = await channel.declare_queue(
                queue_name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            rabbit.sync_quorum_metadata()  # else a kill this soon after declaring breaks the queue
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue.name)

        await rabbit.akill()
        assert not accepts(port)
        assert not alive(tree), "SIGKILL must reach beam.smp, not only the start script"
        await rabbit.astart()
        assert rabbit.port == port

        connection = await aio_pika.connect(url, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(queue_name, passive=True)
            kept = await queue.get(timeout=10, fail=False)
            assert kept is not None, "the persistent message was lost"
            assert kept.body == body
            await kept.ack()
        tree = process_tree(rabbit)
    assert_closed_cleanly(port, rabbit.dir, tree)


class BrokenRedis(PrivateRedis):
    start_timeout = 5.0

    def _command(self) -> list[str]:
        return [*super()._command(), "--no-such-option", "yes"]


def test_a_service_that_cannot_start_fails_with_the_tail_of_its_log() -> None:
    server = BrokenRedis()
    try:
        with pytest.raises(PrivateServiceError, match="no-such-option"):
            server.start()
        assert not server.running
    finally:
        server.close()
    assert not server.dir.exists()
