"""Runs fleet roles in one process: connects, starts them, serves probes, and stops them gracefully.

`scf up` runs the dispatcher and a worker for every type here; `scf dispatcher` and `scf worker` run
one role each. SIGTERM/SIGINT stop consuming, drain in-flight work for `SCF_SHUTDOWN_GRACE`, then exit.
Under a supervisor (`--processes N`, see supervisor.py) the process also reports readiness through an
inherited pipe and dies with its supervisor. `SCF_UVLOOP=1` runs uvloop where it is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog
from aio_pika.abc import AbstractRobustConnection

from scf.dispatcher.discovery import discover
from scf.dispatcher.dispatcher import Dispatcher
from scf.fleet import amqp, tracing
from scf.fleet.access import warn_if_off
from scf.fleet.crypto import load_secret_box
from scf.fleet.http import ProbeServer
from scf.fleet.settings import Settings
from scf.fleet.startup import StartupError, wait_for
from scf.fleet.state import StateStore
from scf.worker.worker import Worker

log = structlog.get_logger(__name__)

OnReady = Callable[[], Awaitable[None]]
T = TypeVar("T")

#: Set by a supervisor in each child's environment: the pipe to report on, its pid, the child's name.
SUPERVISOR_FD_ENV = "SCF_SUPERVISOR_FD"
SUPERVISOR_PID_ENV = "SCF_SUPERVISOR_PID"
PROCESS_LABEL_ENV = "SCF_PROCESS_LABEL"
#: `SCF_UVLOOP=1` (or true/yes/on) runs uvloop where it is installed; off by default until the fault
#: suite's broker-kill scenarios are shown to lose nothing under uvloop (see uvloop_wanted).
UVLOOP_ENV = "SCF_UVLOOP"
_PR_SET_PDEATHSIG = 1


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
    """A human-readable step on stderr (logs are JSON; this is for the person at the terminal).

    A supervised child names itself (`scf[worker-2]: ...`): only its supervisor says `scf: ready:`.
    """
    label = os.environ.get(PROCESS_LABEL_ENV)
    print(f"scf[{label}]: {text}" if label else f"scf: {text}", file=sys.stderr, flush=True)


def uvloop_wanted() -> bool:
    """Off unless asked for: in 2 of 6 runs of tests/faults/test_service_restarts.py under load with
    uvloop in every fleet process, the broker restart/kill -9 scenarios left 7-14 keyed requests with
    neither effect nor reply (the 3 runs without uvloop, including the baseline, lost none). Until
    that is explained, speed must not cost the no-loss guarantee."""
    return os.environ.get(UVLOOP_ENV, "0").strip().lower() in {"1", "true", "yes", "on"}


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed and asked for (`SCF_UVLOOP=1`); None means asyncio's."""
    if not uvloop_wanted():
        return None
    try:
        import uvloop
    except ImportError:  # e.g. Windows, or a build without it: asyncio works, only slower
        return None
    return uvloop.new_event_loop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine on the fastest loop available (see `event_loop_factory`)."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


class SupervisorLink:
    """A supervised child's side of the contract: die with the supervisor, tell it when ready."""

    def __init__(self, fd: int, supervisor_pid: int, label: str) -> None:
        self.fd = fd
        self.supervisor_pid = supervisor_pid
        self.label = label

    @classmethod
    def from_env(cls) -> SupervisorLink | None:
        raw_fd, raw_pid = os.environ.get(SUPERVISOR_FD_ENV), os.environ.get(SUPERVISOR_PID_ENV)
        if not raw_fd or not raw_pid:
            return None
        return cls(int(raw_fd), int(raw_pid), os.environ.get(PROCESS_LABEL_ENV, "child"))

    def die_with_parent(self) -> None:
        """SIGKILL this process when the supervisor dies (Linux), as if it had been killed with it.

        A SIGKILLed supervisor must not leave workers behind holding messages: the fault suite kills
        a worker's pid and expects its unacked work back in the queue.
        """
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if self.orphaned:  # the supervisor died before prctl took effect
            os._exit(1)

    @property
    def orphaned(self) -> bool:
        return os.getppid() != self.supervisor_pid

    async def watch_parent(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Where PDEATHSIG does not exist: drain and stop once the supervisor is gone."""
        while True:  # no event tells a process its parent died: ask the kernel now and then
            await asyncio.sleep(interval)
            if self.orphaned:
                break
        log.warning("supervisor_gone", supervisor_pid=self.supervisor_pid)
        stop.set()

    def report_ready(self, port: int | None) -> None:
        with contextlib.suppress(OSError):  # a supervisor that stopped listening is watched above
            os.write(self.fd, f"ready {port or 0}\n".encode())


async def connect_with_retry(settings: Settings, name: str) -> AbstractRobustConnection:
    """The broker connection, waited for up to SCF_STARTUP_TIMEOUT (backoff with jitter)."""
    try:
        return await wait_for(
            "RabbitMQ at SCF_AMQP_URL",
            lambda: amqp.connect(settings.amqp_url, name),
            deadline=settings.scf_startup_timeout,
            say=progress,
        )
    except StartupError as exc:
        progress(str(exc))
        raise SystemExit(2) from None


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


async def open_state(settings: Settings) -> StateStore:
    """The fleet's Redis state with the secret box; exits (code 2) when Redis is not reachable."""
    box = load_secret_box(
        settings.scf_secret_key.get_secret_value() if settings.scf_secret_key else None, settings.scf_data_dir
    )
    state = StateStore.from_settings(settings, box)
    try:
        await wait_for(
            "Redis at SCF_REDIS_URL",
            state.ping,
            deadline=settings.scf_startup_timeout,
            say=progress,
            ready=bool,
        )
    except StartupError as exc:
        await state.close()
        progress(f"{exc}: start it and try again")
        raise SystemExit(2) from None
    return state


def assemble(
    settings: Settings, roles: Roles, state: StateStore, connection: AbstractRobustConnection
) -> list[Role]:
    """The composition: the roles this process runs, each given the shared state and connection."""
    services: list[Role] = []
    if roles.dispatcher:
        services.append(Dispatcher(settings, state, connection))
    if roles.worker_types:
        services.append(Worker(settings, state, connection, roles.worker_types, roles.concurrency))
    if roles.gateway:
        from scf.gateway.server import GatewayServer  # only processes that serve HTTP import FastAPI

        services.append(GatewayServer(settings))
    return services


async def run(settings: Settings, roles: Roles, *, on_ready: OnReady | None = None) -> None:
    supervisor = SupervisorLink.from_env()
    if supervisor is not None:
        supervisor.die_with_parent()
        structlog.contextvars.bind_contextvars(process=supervisor.label)
    warn_if_off(settings, "fleet")
    tracing.configure(settings.scf_tracing)
    if not settings.auth_enabled:
        progress("WARNING: SCF_AUTH=off: access control is OFF, every caller may do anything")
    state = await open_state(settings)
    connection = await connect_with_retry(settings, "scf-" + ("dispatcher" if roles.dispatcher else "worker"))
    services = assemble(settings, roles, state, connection)
    redis_ok = RedisWatch(state, settings.scf_heartbeat_interval)

    def ready() -> bool:
        """Ready = connected to RabbitMQ and Redis, and every role started (a worker: consuming)."""
        return not connection.is_closed and redis_ok.up and all(s.ready for s in services)

    probe = ProbeServer(ready, port=settings.scf_metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    orphan_watch = None
    if supervisor is not None:
        orphan_watch = asyncio.create_task(supervisor.watch_parent(stop), name="supervisor-watch")
    try:
        for service in services:
            progress(f"starting {service.role}")
            await service.start()
        await probe.start()
        redis_ok.start()
        if roles.gateway:
            where = f"{settings.scf_gateway_host}:{settings.service_connector_factory_port}"
            progress(f"gateway on {where} (/docs, /connectors, /metrics)")
        for service in services:  # declared and discovered connectors exist before "ready" is announced
            if isinstance(service, Dispatcher):
                await discover(settings, service.control, progress)
        progress(f"ready: probes and metrics on :{probe.port} (/healthz /readyz /metrics)")
        log.info("process_ready", loop=type(loop).__module__.split(".")[0], probe_port=probe.port)
        if supervisor is not None:
            supervisor.report_ready(probe.port)
        if on_ready is not None:
            await on_ready()
        await stop.wait()
        progress("stopping: draining in-flight work")
    finally:
        if orphan_watch is not None:
            orphan_watch.cancel()
        redis_ok.stop()
        for service in services:
            await service.stop(settings.scf_shutdown_grace)
        await probe.stop()
        await connection.close()
        await state.close()
