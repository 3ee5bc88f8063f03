"""Runs fleet roles in one process: connects, starts them, serves probes, and stops them gracefully.

`scf up` runs the dispatcher and a worker for every type here; `scf dispatcher` and `scf worker` run
one role each. SIGTERM/SIGINT stop consuming, drain in-flight work for `SCF_SHUTDOWN_GRACE`, then exit.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from aio_pika.abc import AbstractRobustConnection

from scf.dispatcher.discovery import discover
from scf.dispatcher.service import Dispatcher
from scf.fleet import amqp
from scf.fleet.crypto import load_secret_box
from scf.fleet.http import ProbeServer
from scf.fleet.settings import Settings
from scf.fleet.state import StateStore
from scf.worker.service import Worker

log = structlog.get_logger(__name__)

OnReady = Callable[[], Awaitable[None]]


class Role(Protocol):
    role: str

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...


@dataclass
class Roles:
    dispatcher: bool = False
    worker_types: list[str] = field(default_factory=list)
    concurrency: int = 16
    gateway: bool = False


def progress(text: str) -> None:
    """A human-readable step on stderr (logs are JSON; this is for the person at the terminal)."""
    print(f"scf: {text}", file=sys.stderr, flush=True)


async def connect_with_retry(settings: Settings, name: str, attempts: int = 30) -> AbstractRobustConnection:
    for attempt in range(1, attempts + 1):
        try:
            return await amqp.connect(settings.amqp_url, name)
        except Exception as exc:
            if attempt == attempts:
                raise
            progress(f"waiting for RabbitMQ ({attempt}/{attempts}): {type(exc).__name__}")
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


class RedisWatch:
    """Whether Redis answered its last ping (readiness must not block on a network call)."""

    def __init__(self, state: StateStore, interval: float) -> None:
        self.state = state
        self.interval = interval
        self.up = True
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="redis-watch")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            up = await self.state.ping()
            if up != self.up:
                log.warning("redis_reachability_changed", up=up)
            self.up = up
            await asyncio.sleep(self.interval)


async def run(settings: Settings, roles: Roles, *, on_ready: OnReady | None = None) -> None:
    box = load_secret_box(
        settings.scf_secret_key.get_secret_value() if settings.scf_secret_key else None, settings.scf_data_dir
    )
    state = StateStore.from_url(settings.redis_url, box)
    if not await state.ping():
        progress("Redis is not reachable at SCF_REDIS_URL; start it and try again")
        raise SystemExit(2)
    connection = await connect_with_retry(settings, "scf-" + ("dispatcher" if roles.dispatcher else "worker"))
    services: list[Role] = []
    if roles.dispatcher:
        services.append(Dispatcher(settings, state, connection))
    if roles.worker_types:
        services.append(Worker(settings, state, connection, roles.worker_types, roles.concurrency))
    if roles.gateway:
        from scf.gateway.server import GatewayServer  # only processes that serve HTTP import FastAPI

        services.append(GatewayServer(settings))

    redis_ok = RedisWatch(state, settings.scf_heartbeat_interval)

    def ready() -> bool:
        """Ready = connected to RabbitMQ and Redis, and every role started (a worker: consuming)."""
        return not connection.is_closed and redis_ok.up and all(s.ready for s in services)

    probe = ProbeServer(ready, port=settings.scf_metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for service in services:
            progress(f"starting {service.role}")
            await service.start()
        await probe.start()
        redis_ok.start()
        if roles.gateway:
            progress(f"gateway on :{settings.service_connector_factory_port} (/docs, /connectors, /metrics)")
        for service in services:  # declared and discovered connectors exist before "ready" is announced
            if isinstance(service, Dispatcher):
                await discover(settings, service.control, progress)
        progress(f"ready: probes and metrics on :{probe.port} (/healthz /readyz /metrics)")
        if on_ready is not None:
            await on_ready()
        await stop.wait()
        progress("stopping: draining in-flight work")
    finally:
        redis_ok.stop()
        for service in services:
            await service.stop(settings.scf_shutdown_grace)
        await probe.stop()
        await connection.close()
        await state.close()
