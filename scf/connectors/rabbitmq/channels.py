"""The connector's own AMQP connection (never the fleet's) and its small pool of channels (thin I/O).

A channel that saw any error is closed and dropped, never reused; a dropped connection is replaced on
next use. aio-pika's robust connection is not used: it re-declares and caches what its channels
declared, which would undo `delete_queue` after a reconnect and answer `queue_stats` from a cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection

from scf.connectors.rabbitmq.settings import ConnectSettings, tls_context
from scf.connectors.sources import time_left

log = structlog.get_logger(__name__)

#: Seconds a channel gets to close; past that it is dropped (its connection may be gone).
CLOSE_TIMEOUT = 5.0


class ChannelPool:
    """At most `size` channels in use at once on one connection; healthy ones are kept for reuse.

    The broker closes a channel on a channel error (404 for a missing queue, 406 for an inequivalent
    redeclare), and closing one is how a half-read batch goes back to its queue: so a channel that saw
    any exception is closed and dropped, and one found closed is never handed out again.
    """

    def __init__(self, connection: AbstractConnection, size: int, confirms: bool) -> None:
        self._connection = connection
        self._confirms = confirms
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AbstractChannel] = []
        self.in_use = 0
        self.opened_total = 0
        self.discarded_total = 0

    @property
    def size(self) -> int:
        return len(self._idle) + self.in_use

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[AbstractChannel]:
        async with self._slots:
            channel = await self._take()
            self.in_use += 1
            try:
                yield channel
            except BaseException:
                await _close_quietly(channel)
                self.discarded_total += 1
                raise
            else:
                if channel.is_closed:
                    self.discarded_total += 1
                else:
                    self._idle.append(channel)
            finally:
                self.in_use -= 1

    async def _take(self) -> AbstractChannel:
        while self._idle:
            channel = self._idle.pop()
            if not channel.is_closed:
                return channel
            self.discarded_total += 1
        # on_return_raises: an unroutable mandatory publish raises instead of calling a callback. Only
        # confirms tie a returned message to its publish, so without them nothing can be raised.
        channel = await self._connection.channel(
            publisher_confirms=self._confirms, on_return_raises=self._confirms
        )
        self.opened_total += 1
        return channel

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for channel in idle:
            await _close_quietly(channel)


class Link:
    """The connection and its pool, opened on demand and replaced when the broker dropped it."""

    def __init__(self, settings: ConnectSettings, pool_size: int, confirms: bool) -> None:
        self.settings = settings
        self._pool_size = pool_size
        self._confirms = confirms
        self._connection: AbstractConnection | None = None
        self._pool: ChannelPool | None = None
        self._lock = asyncio.Lock()
        self.connects_total = 0
        self.channels_opened_total = 0

    @property
    def pool(self) -> ChannelPool | None:
        return self._pool

    @property
    def healthy(self) -> bool:
        connection = self._connection
        return connection is not None and not connection.is_closed and connection.connected.is_set()

    async def open(self) -> None:
        """Connect if not connected. Raises the driver's errors (the connector classifies them)."""
        if self.healthy:
            return
        async with self._lock:
            if self.healthy:
                return
            reconnect = self._connection is not None
            await self._drop()
            # aio-pika's own timeout does not cover a host that accepts and never speaks AMQP
            async with asyncio.timeout(time_left(self.settings.timeout)):
                connection = await aio_pika.connect(
                    ssl_context=tls_context(self.settings), **self.settings.connect_kwargs()
                )
            self._connection = connection
            self._pool = ChannelPool(connection, self._pool_size, self._confirms)
            self.connects_total += 1
            log.info(
                "rabbitmq_reconnected" if reconnect else "rabbitmq_connected",
                where=self.settings.where,
                connection_name=self.settings.name,
            )

    @asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        """A channel for one operation; any exception inside closes and drops it."""
        await self.open()
        pool = self._pool
        if pool is None:  # pragma: no cover - open() sets it or raises
            raise RuntimeError("the channel pool is not open")
        async with pool.acquire() as channel:
            yield channel

    def is_blocked(self) -> bool:
        """Whether the broker sent `connection.blocked` (memory or disk alarm) and has not unblocked.

        aio-pika does not expose this; aiormq keeps it in an event on its connection.
        """
        transport = getattr(self._connection, "transport", None)
        underlay = getattr(transport, "connection", None)
        unblocked = getattr(underlay, "_Connection__connection_unblocked", None)
        return isinstance(unblocked, asyncio.Event) and not unblocked.is_set()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        pool, self._pool = self._pool, None
        connection, self._connection = self._connection, None
        if pool is not None:
            self.channels_opened_total += pool.opened_total
            await pool.close()
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:  # closing a dead connection may fail: it is gone either way
                log.debug("rabbitmq_close_failed", detail=f"{type(exc).__name__}: {exc}"[:300])


async def _close_quietly(channel: AbstractChannel) -> None:
    if channel.is_closed:
        return
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await channel.close()
    except Exception as exc:  # a channel that fails to close is dropped all the same
        log.debug("rabbitmq_channel_close_failed", detail=f"{type(exc).__name__}: {exc}"[:300])
