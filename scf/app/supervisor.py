"""One supervisor for N fleet processes: `scf worker --processes N` and `scf up --processes N`.

Each child is the same CLI run as a subprocess (`python -m scf worker --processes 1 ...`), so it owns a
fresh interpreter, event loop and AMQP connection. A child reports "ready <port>" on an inherited pipe
and is SIGKILLed by the kernel if the supervisor dies. The supervisor forwards SIGTERM/SIGINT, waits
`SCF_SHUTDOWN_GRACE` + a margin for every child to drain, then kills stragglers; a child that dies on its
own is restarted with backoff (bounded). It serves `/healthz` (every child alive), `/readyz` (every
child ready) and `/metrics` (its own and every child's, labelled `process`) on `SCF_METRICS_PORT`;
child k of N listens on `SCF_METRICS_PORT + k` (or an ephemeral port when the base is 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from scf.app.runner import PROCESS_LABEL_ENV, SUPERVISOR_FD_ENV, SUPERVISOR_PID_ENV, progress
from scf.fleet.http import ProbeServer, http_get, merge_metrics, parse_metrics

log = structlog.get_logger(__name__)

#: What asyncio reports for a child another waiter reaped first: its real exit code is lost.
UNKNOWN_EXIT = 255

#: Seconds the supervisor waits beyond `SCF_SHUTDOWN_GRACE` before it SIGKILLs a child (the child's
#: own drain gives up after the grace; this covers closing connections and interpreter exit).
SHUTDOWN_MARGIN = 5.0
#: Exit statuses of a child that stopped because it was asked to.
CLEAN_EXITS = frozenset({0, -signal.SIGTERM, -signal.SIGINT})

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
CHILD_DEATHS = Counter(
    "scf_supervisor_child_deaths_total",
    "Children that exited without being asked to, by child.",
    ["child"],
    registry=REGISTRY,
)
CHILD_RESTARTS = Counter(
    "scf_supervisor_child_restarts_total", "Children started again after dying.", ["child"], registry=REGISTRY
)
CHILDREN_ALIVE = Gauge("scf_supervisor_children_alive", "Child processes running now.", registry=REGISTRY)


def default_processes() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells, else every core)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def child_port(base: int, index: int) -> int:
    """Probe port of child `index` (1-based): base + index, or ephemeral when base is 0 or overflows."""
    if base == 0 or base + index > 65535:
        return 0
    return base + index


@dataclass(frozen=True)
class ChildSpec:
    """One child: its name (`worker-2`), its kind for progress lines, the CLI arguments and env."""

    label: str
    kind: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestartPolicy:
    """How soon a dead child starts again: doubling from `first_delay`, at most `max_deaths` in `window`."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    max_deaths: int = 5
    window: float = 60.0

    def delay(self, deaths: Sequence[float], now: float) -> float | None:
        """Seconds to wait before the next start, or None: the child died too often, give up."""
        recent = sum(1 for at in deaths if now - at <= self.window)
        if recent > self.max_deaths:
            return None
        return min(self.first_delay * 2.0 ** max(recent - 1, 0), self.max_delay)


class Child:
    """A child process slot: restarts keep the label and the port."""

    def __init__(self, spec: ChildSpec, port: int) -> None:
        self.spec = spec
        self.requested_port = port
        self.process: asyncio.subprocess.Process | None = None
        self.port: int | None = None  # what the child reported once ready
        self.ready = False
        self.ever_ready = False
        self.deaths: list[float] = []
        self.failed = False  # died at startup, gave up restarting, or had to be killed
        self.exit_code: int | None = None
        self._reports: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def spawn(self, on_ready: Callable[[Child], None]) -> None:
        read_fd, write_fd = os.pipe()
        env = {
            **os.environ,
            **self.spec.env,
            "SCF_METRICS_PORT": str(self.requested_port),
            SUPERVISOR_FD_ENV: str(write_fd),
            SUPERVISOR_PID_ENV: str(os.getpid()),
            PROCESS_LABEL_ENV: self.spec.label,
        }
        try:
            self.process = await asyncio.create_subprocess_exec(  # our own CLI, not user input
                sys.executable,
                "-m",
                "scf",
                *self.spec.args,
                env=env,
                pass_fds=(write_fd,),
                process_group=0,  # Ctrl-C reaches the supervisor only; it forwards the stop
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.ready = False
        self.port = None
        log.info("child_started", child=self.spec.label, pid=self.process.pid)
        self._reports = asyncio.create_task(
            self._read_reports(read_fd, on_ready), name=f"reports-{self.spec.label}"
        )

    async def _read_reports(self, fd: int, on_ready: Callable[[Child], None]) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1024)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                word, _, value = line.decode("ascii", errors="replace").strip().partition(" ")
                if word == "ready" and value.isdigit():
                    self.port = int(value) or None
                    self.ready = True
                    on_ready(self)
        except (ValueError, asyncio.LimitOverrunError, ConnectionError):
            log.warning("child_report_unreadable", child=self.spec.label)
        finally:
            self.ready = False
            transport.close()

    def signal(self, sig: signal.Signals) -> None:
        if self.alive and self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)


class Supervisor:
    """Starts children in waves (each wave once the previous is ready), keeps them alive, drains them."""

    def __init__(
        self,
        waves: Sequence[Sequence[ChildSpec]],
        *,
        metrics_port: int,
        grace: float,
        policy: RestartPolicy | None = None,
        ready_note: str | None = None,
    ) -> None:
        self.waves = [[Child(spec, 0) for spec in wave] for wave in waves]
        self.children = [child for wave in self.waves for child in wave]
        for index, child in enumerate(self.children, 1):
            child.requested_port = child_port(metrics_port, index)
        self.metrics_port = metrics_port
        self.grace = grace
        self.policy = policy or RestartPolicy()
        self.ready_note = ready_note
        self.stop = asyncio.Event()
        self.stopping = False
        self.failure: str | None = None
        self._ready_reports: asyncio.Queue[Child] = asyncio.Queue()
        self._announced: dict[str, int] = {}  # kind -> children announced ready so far

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT or a failure; 0 if every child drained and exited cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        probe = ProbeServer(self.ready, port=self.metrics_port, alive=self.alive, metrics=self.metrics)
        await probe.start()
        keepers: list[asyncio.Task[None]] = []
        try:
            for wave in self.waves:
                keepers += [asyncio.create_task(self._keep(c), name=c.spec.label) for c in wave]
                if not await self._until_ready(wave):
                    break
            else:
                ports = ", ".join(f"{c.spec.label} :{c.port}" for c in self.children)
                progress(f"ready: probes and metrics on :{probe.port} (/healthz /readyz /metrics); {ports}")
                if self.ready_note:
                    progress(self.ready_note)
            await self.stop.wait()
        finally:
            await self._shutdown(keepers)
            await probe.stop()
        failed = [c for c in self.children if c.failed]
        if self.failure or failed:
            progress(f"stopped with failures: {self.failure or ', '.join(c.spec.label for c in failed)}")
            codes = [c.exit_code for c in failed if c.exit_code is not None and c.exit_code > 0]
            # 255 is asyncio's "reaped elsewhere, code unknown" (two children dying at once): a child's
            # own code, when one is known, says more
            known = [code for code in codes if code != UNKNOWN_EXIT] or codes
            return known[0] if known else 1
        progress("stopped: every process drained")
        return 0

    async def _until_ready(self, wave: list[Child]) -> bool:
        """Announce children as they become ready; False if stopped or failed first."""
        waiting = {id(c) for c in wave}
        announced = self._announced
        while waiting and not self.stop.is_set():
            report = asyncio.create_task(self._ready_reports.get())
            stopped = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait({report, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in (report, stopped):
                if task not in done:
                    task.cancel()
            if report in done:
                child = report.result()
                if id(child) in waiting:
                    waiting.discard(id(child))
                    kind = [c for c in self.children if c.spec.kind == child.spec.kind]
                    # numbered in the order the reports are read (two children ready at once are still
                    # "1/2" and "2/2", not "2/2" twice)
                    announced[child.spec.kind] = announced.get(child.spec.kind, 0) + 1
                    count = announced[child.spec.kind]
                    progress(f"{child.spec.kind} {count}/{len(kind)} ready (probes on :{child.port})")
        return not waiting

    async def _keep(self, child: Child) -> None:
        """Run one child until shutdown; if the supervisor itself cannot (spawn failed), stop all."""
        try:
            await self._restart_until_stopped(child)
        except Exception as exc:
            child.failed = True
            log.exception("child_supervision_failed", child=child.spec.label)
            self._fail(f"{child.spec.label}: {type(exc).__name__}: {exc}")

    async def _restart_until_stopped(self, child: Child) -> None:
        """Run one child until shutdown, restarting it after an unexpected death (with backoff)."""
        while not self.stopping:
            await child.spawn(self._on_ready)
            if self.stopping:  # the stop was sent to the children alive before this one started
                child.signal(signal.SIGTERM)
            CHILDREN_ALIVE.inc()
            assert child.process is not None
            code = await child.process.wait()
            CHILDREN_ALIVE.dec()
            child.exit_code = code
            if self.stopping:
                child.failed = code not in CLEAN_EXITS
                return
            CHILD_DEATHS.labels(child.spec.label).inc()
            log.error("child_died", child=child.spec.label, pid=child.process.pid, exit_code=code)
            if not child.ever_ready:  # it never started: a configuration problem, not a crash
                child.failed = True
                self._fail(f"{child.spec.label} exited with {code} before it was ready")
                return
            now = time.monotonic()
            child.deaths.append(now)
            delay = self.policy.delay(child.deaths, now)
            if delay is None:
                child.failed = True
                log.error("child_restarts_exhausted", child=child.spec.label, deaths=len(child.deaths))
                self._fail(f"{child.spec.label} died {len(child.deaths)} times; not restarting it")
                return
            progress(f"{child.spec.label} died (exit {code}); restarting in {delay:.1f}s")
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
                return  # stopping while waiting to restart
            except TimeoutError:
                pass
            CHILD_RESTARTS.labels(child.spec.label).inc()

    def _on_ready(self, child: Child) -> None:
        if child.ever_ready:
            progress(f"{child.spec.label} restarted and ready (probes on :{child.port})")
            return
        child.ever_ready = True
        self._ready_reports.put_nowait(child)

    def _fail(self, reason: str) -> None:
        self.failure = self.failure or reason
        self.stop.set()

    async def _shutdown(self, keepers: list[asyncio.Task[None]]) -> None:
        self.stopping = True
        self.stop.set()
        live = [c for c in self.children if c.alive]
        if live:
            progress(f"stopping: draining {len(live)} processes (up to {self.grace + SHUTDOWN_MARGIN:.0f}s)")
        log.info("supervisor_stopping", children=len(live))
        for child in live:
            child.signal(signal.SIGTERM)
        if not keepers:
            return
        _, pending = await asyncio.wait(keepers, timeout=self.grace + SHUTDOWN_MARGIN)
        for child in self.children:
            if child.alive:
                log.error("child_killed", child=child.spec.label, reason="did not drain in time")
                child.failed = True
                child.signal(signal.SIGKILL)
        if pending:
            await asyncio.wait(pending, timeout=10)

    def alive(self) -> bool:
        return not self.stopping and all(c.alive for c in self.children)

    async def ready(self) -> bool:
        """Every child started, reported ready, and answers its own `/readyz` with 200 now."""
        if self.stopping or not all(c.ready and c.port for c in self.children):
            return False
        answers = await asyncio.gather(
            *(http_get(c.port, "/readyz") for c in self.children if c.port), return_exceptions=True
        )
        return all(not isinstance(a, BaseException) and a[0] == 200 for a in answers)

    async def metrics(self) -> bytes:
        """The supervisor's metrics and every ready child's, each labelled with its process."""
        ready = [c for c in self.children if c.ready and c.port]
        answers = await asyncio.gather(
            *(http_get(c.port, "/metrics") for c in ready if c.port), return_exceptions=True
        )
        sources = [("supervisor", list(REGISTRY.collect()))]
        for child, answer in zip(ready, answers, strict=True):
            if isinstance(answer, BaseException) or answer[0] != 200:
                log.warning("child_metrics_unavailable", child=child.spec.label)
                continue
            sources.append((child.spec.label, parse_metrics(answer[1])))
        return merge_metrics(sources)


def supervise(
    waves: Sequence[Sequence[ChildSpec]], *, metrics_port: int, grace: float, ready_note: str | None = None
) -> int:
    """Run a supervisor to completion on asyncio's own loop (it only waits; children do the work)."""
    total = sum(len(wave) for wave in waves)
    progress(f"starting {total} processes under one supervisor (pid {os.getpid()})")
    supervisor = Supervisor(waves, metrics_port=metrics_port, grace=grace, ready_note=ready_note)
    return asyncio.run(supervisor.run())
