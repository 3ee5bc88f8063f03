"""Round-trip cost of the fleet path against a bare aio-pika two-hop RPC on the same broker.

    .venv/bin/python -m bench.rpc            # full run (about 40 s on 2 CPUs, then ~1 min of peers)
    .venv/bin/python -m bench.rpc --quick    # smoke run (about 1 min with the peers; --no-peers: ~15 s)

What runs, all in a fresh RabbitMQ vhost (deleted at the end), a private Redis (bench/redis_target.py)
and a fresh Fernet key:

* **fleet**: `FleetClient.execute_operation` of a `csv` `preview` on a one-line file (a no-op as far as
  data services go) through `scf` -> `scf.requests` -> dispatcher (validate, Redis lookup) -> `scf.ops`
  -> `scf.ops.csv` -> worker (execute, store the result in Redis) -> the caller's reply queue. The
  dispatcher and the worker (`--types csv --concurrency 64`) are `python -m scf` subprocesses.
* **bare_two_hop**: the same shape with nothing but aio-pika: client -> `bench` exchange ->
  `bench.hop1` -> relay process -> `bench.ops` exchange -> `bench.hop2` -> responder process -> the
  caller's reply queue, echoing the body. Both hop queues are quorum queues with the fleet's work-queue
  arguments; every publish is confirmed and mandatory; requests and forwards are persistent, replies
  are not (exactly like the fleet's, whose reply queue is an exclusive, non-durable queue); each hop
  acks only after its own publish is confirmed; consumers use prefetch 64.

Each side gets a warm-up, then latency at concurrency 1 (p50/p99/mean) and throughput at concurrency 64,
with the CPU each process group spent per call during the throughput phase (bench/procstat.py). Then
the peers run (bench/peers.py: bare aio-pika with and without a hop, Celery prefork 2), the ratios of
issue 12 are printed (bench/report.py) and a PNG chart is written (bench/chart.py).
Progress goes to stderr; stdout gets exactly one JSON line. Any failed call makes the exit status 1.

The same module is also the relay/responder processes of the bare path (`--role relay|responder`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Self

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import PublishError

from bench import chart, peers, procstat, report
from bench.fleetstats import RouteCounter, metrics_port
from bench.redis_target import BenchRedis
from bench.stage import BenchStage, begin, rabbitmqctl, say, sigterm_as_interrupt
from scf.fleet.client import FleetClient
from scf.schemas.topology import QueueLimits, work_queue_arguments
from tests.support.fleet import FleetProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_LINE = "bench: ready"

# --- the bare two-hop topology (mirrors scf -> scf.requests, scf.ops -> scf.ops.<type>) ----------------
BARE_EXCHANGE = "bench"
BARE_OPS_EXCHANGE = "bench.ops"
HOP1_QUEUE, HOP1_KEY = "bench.hop1", "hop1"
HOP2_QUEUE, HOP2_KEY = "bench.hop2", "hop2"
JSON_TYPE = "application/json"

# --- the no-op through the fleet --------------------------------------------------------------------
SERVICE_NAME = "bench_noop"
CONNECTOR = {"service_type": "csv", "service_name": SERVICE_NAME}
REQUEST: dict[str, Any] = {
    "operation": "preview",
    "data": {"file_data": "a\n1\n"},
    "parameters": {"preview_rows": 1, "delimiter": ","},  # a given delimiter: no sniffing, nearly no work
}
# The bare path carries a body of the same size and shape as the fleet's request.
BARE_BODY = json.dumps(
    {"service_name": SERVICE_NAME, **REQUEST, "operation_id": "op_" + "0" * 32}, separators=(",", ":")
).encode()


# === measurement =======================================================================================

Call = Callable[[], Awaitable[str | None]]
"""One round trip; returns None on success or a short description of the failure."""


@dataclass
class Phase:
    label: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies)

    def record(self, seconds: float, error: str | None) -> None:
        self.latencies.append(seconds)
        if error is not None:
            self.failures += 1
            if len(self.errors) < 5:
                self.errors.append(error)
                say(f"{self.label}: call failed: {error}")

    def percentile_ms(self, q: float) -> float | None:
        return _percentile(sorted(self.latencies), q)

    def mean_ms(self) -> float | None:
        return _round(1000 * sum(self.latencies) / len(self.latencies)) if self.latencies else None

    def throughput(self) -> float | None:
        return _round(self.done / self.elapsed, 1) if self.elapsed > 0 else None


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits)


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), in milliseconds."""
    if not values:
        return None
    k = (len(values) - 1) * q / 100
    low = math.floor(k)
    high = min(low + 1, len(values) - 1)
    return _round(1000 * (values[low] + (values[high] - values[low]) * (k - low)))


async def run_phase(label: str, call: Call, total: int, concurrency: int) -> Phase:
    """`total` calls spread over `concurrency` lanes, each lane one call at a time."""
    phase = Phase(label, concurrency)
    remaining = total

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                error = await call()
            except Exception as exc:  # a failed call is a result to report, not a crash
                error = f"{type(exc).__name__}: {exc}"
            phase.record(time.perf_counter() - started, error)

    async def report() -> None:
        while True:
            await asyncio.sleep(2)
            say(f"{label}: {phase.done}/{total} done")

    say(f"{label}: {total} calls at concurrency {concurrency}")
    reporter = asyncio.create_task(report())
    started = time.perf_counter()
    try:
        await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, total)))))
    finally:
        phase.elapsed = time.perf_counter() - started
        reporter.cancel()
    say(
        f"{label}: {phase.done}/{total} done in {phase.elapsed:.2f}s"
        f" (p50 {phase.percentile_ms(50)} ms, {phase.failures} failed)"
    )
    return phase


@dataclass
class Side:
    """Every phase of one system (fleet or bare), summarised for the JSON line."""

    phases: list[Phase] = field(default_factory=list)
    latency: Phase | None = None
    throughput: Phase | None = None
    cpu: dict[str, float | None] | None = None  # µs per call by process group, throughput phase
    routing: dict[str, int | None] | None = None  # fleet only: calls via the dispatcher / straight to ops

    @property
    def failures(self) -> int:
        return sum(p.failures for p in self.phases)

    def summary(self) -> dict[str, Any]:
        lat, tput = self.latency, self.throughput
        out: dict[str, Any] = {
            "p50_ms": lat.percentile_ms(50) if lat else None,
            "p99_ms": lat.percentile_ms(99) if lat else None,
            "mean_ms": lat.mean_ms() if lat else None,
            "max_ms": lat.percentile_ms(100) if lat else None,
            "throughput_rps": tput.throughput() if tput else None,
            "throughput_p50_ms": tput.percentile_ms(50) if tput else None,
            "throughput_p99_ms": tput.percentile_ms(99) if tput else None,
            "failures": self.failures,
            "cpu_us_per_op": self.cpu,
        }
        if self.routing is not None:
            out["routing"] = self.routing
        errors = [e for p in self.phases for e in p.errors]
        if errors:
            out["failure_examples"] = errors[:5]
        return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else _round(a / b)


# === the bare two-hop RPC ==============================================================================


async def bare_connect(url: str, name: str) -> tuple[AbstractRobustConnection, AbstractChannel]:
    """Connection and confirming channel, as the fleet opens them (`scf.fleet.amqp`), in plain aio-pika."""
    connection = await aio_pika.connect_robust(url, client_properties={"connection_name": name}, timeout=10)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    return connection, channel


async def declare_bare_topology(
    channel: AbstractChannel,
) -> tuple[AbstractExchange, AbstractExchange, AbstractQueue, AbstractQueue]:
    """Two direct exchanges and two quorum queues with the fleet's work-queue arguments. Idempotent."""
    args = work_queue_arguments(QueueLimits())
    requests = await channel.declare_exchange(BARE_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    ops = await channel.declare_exchange(BARE_OPS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    hop1 = await channel.declare_queue(HOP1_QUEUE, durable=True, arguments=args)
    await hop1.bind(requests, HOP1_KEY)
    hop2 = await channel.declare_queue(HOP2_QUEUE, durable=True, arguments=args)
    await hop2.bind(ops, HOP2_KEY)
    return requests, ops, hop1, hop2


class BareClient:
    """The caller of the bare path: one exclusive reply queue, futures keyed by correlation id."""

    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel) -> None:
        self._connection = connection
        self._channel = channel
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._exchange: AbstractExchange | None = None
        self._reply_queue = ""

    @classmethod
    async def connect(cls, url: str) -> BareClient:
        client = cls(*await bare_connect(url, "bench-bare-client"))
        client._exchange = await client._channel.get_exchange(BARE_EXCHANGE, ensure=False)
        queue = await client._channel.declare_queue("", exclusive=True, auto_delete=True)
        client._reply_queue = queue.name
        await queue.consume(client._on_reply, no_ack=True)
        return client

    async def close(self) -> None:
        await self._connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, body: bytes, timeout: float) -> bytes:
        assert self._exchange is not None
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            message = aio_pika.Message(
                body,
                content_type=JSON_TYPE,
                type="operation.execute",
                correlation_id=correlation_id,
                reply_to=self._reply_queue,
                message_id="op_" + uuid.uuid4().hex,
                headers={},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await self._exchange.publish(message, HOP1_KEY, mandatory=True, timeout=10)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result(message.body)


async def run_hop(role: str, url: str, prefetch: int) -> None:
    """The relay (hop1 -> hop2) or the responder (hop2 -> reply_to) process of the bare path."""
    connection, channel = await bare_connect(url, f"bench-{role}")
    await channel.set_qos(prefetch_count=prefetch)
    _, ops, hop1, hop2 = await declare_bare_topology(channel)
    tasks: set[asyncio.Task[Any]] = set()

    async def relay(message: AbstractIncomingMessage) -> None:
        outgoing = aio_pika.Message(
            message.body,
            content_type=message.content_type,
            type=message.type,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            message_id=message.message_id,
            headers={"x-bench-forwarded-at": time.time()},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await ops.publish(outgoing, HOP2_KEY, mandatory=True, timeout=10)
        except Exception as exc:  # not confirmed: leave it unacked, like the dispatcher
            say(f"{role}: forward failed: {exc!r}")
            return
        await message.ack()

    async def respond(message: AbstractIncomingMessage) -> None:
        if message.reply_to:
            reply = aio_pika.Message(
                message.body,
                content_type=JSON_TYPE,
                type=f"{message.type or 'unknown'}.reply",
                correlation_id=message.correlation_id,
                headers={},
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            )
            try:
                await channel.default_exchange.publish(reply, message.reply_to, mandatory=True, timeout=10)
            except PublishError:
                say(f"{role}: reply orphaned (caller's queue is gone)")
            except Exception as exc:  # not confirmed: leave it unacked, like the worker
                say(f"{role}: reply failed: {exc!r}")
                return
        await message.ack()

    handler = relay if role == "relay" else respond

    async def tracked(message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(message)
        finally:
            tasks.discard(task)

    queue = hop1 if role == "relay" else hop2
    tag = await queue.consume(tracked)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{READY_LINE}: {role} consuming {queue.name} (prefetch {prefetch})", flush=True)
    await stop.wait()
    await queue.cancel(tag)
    if tasks:
        await asyncio.wait(set(tasks), timeout=5)
    await connection.close()


class HopProcess:
    """A `python -m bench.rpc --role ...` subprocess, output to a log file (the shape of FleetProcess)."""

    def __init__(self, role: str, url: str, prefetch: int, log_path: Path) -> None:
        self.role = role
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.rpc",
                "--role",
                role,
                "--hop-url",
                url,
                "--prefetch",
                str(prefetch),
            ],
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench {self.role} exited early:\n{self.output()[-4000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"bench {self.role} not ready in {timeout}s:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)


# === the isolated environment ==========================================================================


@dataclass(frozen=True)
class Config:
    warmup: int
    calls: int
    throughput_calls: int
    concurrency: int
    worker_concurrency: int
    prefetch: int
    timeout: float
    amqp_base: str
    redis_url: str | None  # None: a private redis-server (see bench/redis_target.py)
    log_dir: Path | None
    quick: bool
    worker_processes: int | None = None  # scf worker --processes N (None: the worker's default)
    peers_dir: Path | None = None  # None: no peers (the peer fields stay null)
    chart: Path | None = None  # None: no chart
    auth: bool = True  # access control on (the bench's client is a principal of its own)


class Environment:
    """The bench's stage (vhost, Redis, access control, logs) and its processes; `close()` undoes all of
    it, whatever happened."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stage = BenchStage(
            "rpc",
            auth=config.auth,
            redis_url=config.redis_url,
            amqp_base=config.amqp_base,
            log_dir=config.log_dir,
        )
        self.amqp_url = self.stage.amqp_url
        self.log_dir = self.stage.logs
        self._own_log_dir = config.log_dir is None
        self.fleet: list[FleetProcess] = []
        self.hops: list[HopProcess] = []
        self.keep_logs = False
        self.client_url = self.amqp_url

    @property
    def redis(self) -> BenchRedis | None:
        return self.stage.redis

    def open(self) -> None:
        env = self.stage.open()
        self.client_url = self.stage.client_url
        worker = ["worker", "--types", "csv", "--concurrency", str(self.config.worker_concurrency)]
        if self.config.worker_processes is not None:
            worker += ["--processes", str(self.config.worker_processes)]
        say(f"starting dispatcher and `scf {' '.join(worker)}`")
        self.fleet.append(FleetProcess(["dispatcher"], env, self.log_dir / "dispatcher.log"))
        self.fleet.append(FleetProcess(worker, env, self.log_dir / "worker.log"))
        for proc in self.fleet:
            proc.wait_ready()
        # The fleet declared scf.dlx (the dead-letter exchange of the work-queue arguments) by now.
        say(f"starting bare relay and responder (prefetch {self.config.prefetch})")
        for role in ("relay", "responder"):
            self.hops.append(
                HopProcess(role, self.amqp_url, self.config.prefetch, self.log_dir / f"{role}.log")
            )
        for hop in self.hops:
            hop.wait_ready()

    def cpu_groups(self, side: str) -> dict[str, procstat.PidSource]:
        """The process groups whose CPU a throughput phase of `side` ("fleet" or "bare") is charged."""
        own = (
            {proc.args[0]: proc.proc.pid for proc in self.fleet}
            if side == "fleet"
            else {hop.role: hop.proc.pid for hop in self.hops}
        )
        return procstat.standard_groups(processes=own, redis_pid=self.redis.pid if self.redis else None)

    def route_counter(self) -> RouteCounter:
        dispatcher = next((p for p in self.fleet if p.args[0] == "dispatcher"), None)
        return RouteCounter(metrics_port(dispatcher.own_output()) if dispatcher else None)

    def close(self) -> None:
        stoppers: list[tuple[str, Callable[..., int]]] = [
            *((hop.role, hop.stop) for hop in self.hops),
            *((proc.args[0], proc.stop) for proc in self.fleet),
        ]
        for name, stop in stoppers:
            try:
                code = stop(timeout=15)
                if code not in (0, -signal.SIGTERM, 143):
                    say(f"{name} exited with status {code}")
                    self.keep_logs = True
            except Exception as exc:
                say(f"could not stop a process: {exc!r}")
                self.keep_logs = True
        self.stage.close()
        if self._own_log_dir and not self.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        else:
            say(f"process logs kept in {self.log_dir}")

    def log_tails(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"--- {path.name} (last 3000 chars) ---\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


# === the run ===========================================================================================


async def measure(config: Config, env: Environment) -> tuple[Side, Side]:
    fleet, bare = Side(), Side()
    async with (
        await FleetClient.connect(env.client_url, timeout=config.timeout) as client,
        await BareClient.connect(env.amqp_url) as bare_client,
    ):
        created = await client.create_connector(CONNECTOR)
        say(f"connector {created.service_name}: {created.created.connector_info.connection_status}")

        async def fleet_call() -> str | None:
            result = await client.execute_operation(SERVICE_NAME, REQUEST)
            if result.status == "success":
                return None
            error = result.error
            return f"{error.code}: {error.message}" if error else "failed without an error"

        async def bare_call() -> str | None:
            reply = await bare_client.call(BARE_BODY, config.timeout)
            return None if reply == BARE_BODY else f"reply differs from the request ({len(reply)} bytes)"

        sides = (("fleet", fleet, fleet_call), ("bare", bare, bare_call))
        # Warm-up: half one at a time, half at full concurrency (pools, caches, queue leaders).
        for name, side, call in sides:
            side.phases.append(await run_phase(f"{name} warm-up c=1", call, (config.warmup + 1) // 2, 1))
            side.phases.append(
                await run_phase(
                    f"{name} warm-up c={config.concurrency}", call, config.warmup // 2, config.concurrency
                )
            )
        for name, side, call in sides:
            side.latency = await run_phase(f"{name} latency", call, config.calls, 1)
            side.phases.append(side.latency)
        routes = env.route_counter()
        for name, side, call in sides:
            meter = procstat.CpuMeter(env.cpu_groups(name))
            if side is fleet:
                routes.start()
            meter.start()
            side.throughput = await run_phase(
                f"{name} throughput", call, config.throughput_calls, config.concurrency
            )
            side.cpu = meter.stop(side.throughput.done)
            if side is fleet:
                side.routing = routes.stop(side.throughput.done)
                say(f"fleet throughput routing: {side.routing}")
            side.phases.append(side.throughput)
    return fleet, bare


def machine() -> dict[str, Any]:
    try:
        rabbit = rabbitmqctl("version", check=False) or None
    except Exception:
        rabbit = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aio_pika": metadata.version("aio-pika"),
        "rabbitmq": rabbit,
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other tenants' load shows here (and in each peer's env)
    }


async def measure_until_terminated(config: Config, env: Environment) -> tuple[Side, Side]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await measure(config, env)


def result_line(config: Config, fleet: Side, bare: Side, runs: dict[str, peers.PeerRun]) -> dict[str, Any]:
    """The JSON line: both sides, the peers, every ratio of issue 12 and the goals they are held to."""
    f, b = fleet.summary(), bare.summary()
    line: dict[str, Any] = {
        "fleet": f,
        "bare_two_hop": b,
        "ratio": {
            "p50": _ratio(f["p50_ms"], b["p50_ms"]),
            "p99": _ratio(f["p99_ms"], b["p99_ms"]),
            "throughput": _ratio(f["throughput_rps"], b["throughput_rps"]),
        },
        "peers": peers.rpc_peers(runs, config.concurrency),
        "calls": {
            "warmup": config.warmup,
            "latency": config.calls,
            "latency_concurrency": 1,
            "throughput": config.throughput_calls,
            "throughput_concurrency": config.concurrency,
            "worker_concurrency": config.worker_concurrency,
            "worker_processes": config.worker_processes,
            "quick": config.quick,
        },
    }
    line["ratios"] = report.rpc_ratios(line)
    line["goals"] = report.judge(line["ratios"], report.RPC_GOALS)
    return line


def chart_panels(line: dict[str, Any]) -> list[chart.Panel]:
    """Throughput, latency at 1 and under load (p50/p99), and CPU per call, fleet first."""
    p = line.get("peers") or {}
    concurrency = report.dig(line, "calls", "throughput_concurrency")
    systems = [
        ("fleet (FleetClient)", line.get("fleet"), True),
        ("bare two-hop (in-run)", line.get("bare_two_hop"), False),
        ("raw aio-pika hop, durable", p.get("raw_hop_durable"), False),
        ("raw aio-pika direct, durable", p.get("raw_direct_durable"), False),
        ("Celery prefork 2, Redis", p.get("celery_prefork2"), False),
    ]

    def value(row: Any, key: str) -> float | None:
        return report.number(report.dig(row, key))

    def bars(*keys: tuple[str, str]) -> tuple[chart.Bar, ...]:
        return tuple(
            chart.Bar(label, {s: value(row, k) for s, k in keys}, fleet) for label, row, fleet in systems
        )

    return [
        chart.Panel(
            f"No-op RPC throughput, {concurrency} in flight", "calls/s (higher is better)", ("calls/s",),
            bars(("calls/s", "throughput_rps")),
        ),
        chart.Panel(
            "Latency, one call at a time", "ms (lower is better)", ("p50", "p99"),
            bars(("p50", "p50_ms"), ("p99", "p99_ms")),
        ),
        chart.Panel(
            f"Latency under load, {concurrency} in flight", "ms (lower is better)", ("p50", "p99"),
            bars(("p50", "throughput_p50_ms"), ("p99", "throughput_p99_ms")),
        ),
        chart.cpu_panel(
            f"CPU per call during the throughput phase ({concurrency} in flight)",
            [(label, report.dig(row, "cpu_us_per_op"), fleet) for label, row, fleet in systems],
        ),
    ]  # fmt: skip


def finish(
    config: Config, fleet: Side, bare: Side, started: float, background: float | None = None
) -> dict[str, Any]:
    """After the fleet is stopped: run the peers, print the tables and the JSON line, draw the chart."""
    runs = peers.run_peers(config.peers_dir, peers.rpc_jobs(config.concurrency, config.quick))
    line = result_line(config, fleet, bare, runs)
    line["machine"] = {**machine(), "bg_cores_busy_before": background}
    say(
        "ratios (issue 12; p50 ratios: lower is better):\n"
        + report.ratio_table(line["ratios"], report.RPC_GOALS)
    )
    say(
        "CPU per call by process group (throughput phase):\n"
        + report.cpu_table(
            [
                ("fleet", line["fleet"]["cpu_us_per_op"]),
                ("bare_two_hop", line["bare_two_hop"]["cpu_us_per_op"]),
                *((name, report.dig(line, "peers", name, "cpu_us_per_op")) for name in
                  ("raw_hop_durable", "raw_direct_durable", "celery_prefork2")),
            ]
        )
    )  # fmt: skip
    line["chart"] = None
    if config.chart is not None:
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            footer = (
                f"{line['machine']['cpus']} CPUs shared by client, broker, Redis and every process "
                f"({background} busy before the run, load average {line['machine']['loadavg_1m']}); "
                f"{'--quick' if config.quick else 'full'} run; peers from ../shared/peers in the same run\n"
                + report.goal_summary(line["ratios"], report.RPC_GOALS)
            )
            line["chart"] = str(chart.write_chart(
                config.chart, f"bench.rpc: the fleet beside its peers ({stamp})", chart_panels(line), footer
            ))  # fmt: skip
            say(f"chart: {line['chart']}")
        except Exception as exc:  # a chart that cannot be drawn must not lose the figures
            say(f"chart not written: {type(exc).__name__}: {exc}")
    line["elapsed_s"] = round(time.perf_counter() - started, 1)
    return line


def drive(config: Config) -> int:
    started, background = begin("info")  # the client's log lines go to stderr; stdout is the result
    env = Environment(config)
    status = 0
    measured: tuple[Side, Side] | None = None
    try:
        env.open()
        measured = asyncio.run(measure_until_terminated(config, env))
        fleet, bare = measured
        if fleet.failures or bare.failures:
            say(f"FAILED calls: fleet {fleet.failures}, bare {bare.failures}")
            env.keep_logs = True
            status = 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted")
        status = 130
    except Exception as exc:
        say(f"error: {type(exc).__name__}: {exc}")
        say("process logs:\n" + env.log_tails())
        env.keep_logs = True
        status = 2
    finally:
        # Cleanup must finish: a second Ctrl-C would leave processes, a vhost and Redis keys behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("cleaning up (stopping processes, deleting the vhost and our redis state)")
        env.close()
    if measured is not None and status in (0, 1):
        # The fleet is stopped before the peers run: they get the machine to themselves, as it had.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, sigterm_as_interrupt)
        if status == 1:
            say("peers skipped: the fleet's figures are not valid with failed calls")
        config_now = config if status == 0 else replace(config, peers_dir=None)
        try:
            print(json.dumps(finish(config_now, *measured, started, background)), flush=True)
        except KeyboardInterrupt:
            say("interrupted")
            status = 130
    say(f"done in {time.perf_counter() - started:.1f}s")
    return status


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rpc",
        description="Fleet no-op round trip vs a bare aio-pika two-hop RPC; one JSON line on stdout.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 50 warm-up, 100 latency + 500 throughput calls each"
    )
    parser.add_argument("--calls", type=int, default=None, help="latency calls at concurrency 1 (1000)")
    parser.add_argument(
        "--throughput-calls", type=int, default=None, help="throughput calls at --concurrency (5000)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per side (200)")
    parser.add_argument("--concurrency", type=int, default=64, help="in-flight calls of the throughput phase")
    parser.add_argument("--worker-concurrency", type=int, default=64, help="scf worker --concurrency")
    parser.add_argument("--prefetch", type=int, default=64, help="prefetch of the bare relay and responder")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call timeout in seconds")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672", help="broker, sans vhost")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="an EMPTY Redis database to use (flushed after) instead of a private redis-server",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="keep process logs here")
    add_common_arguments(parser)
    parser.add_argument(
        "--role", choices=["driver", "relay", "responder"], default="driver", help=argparse.SUPPRESS
    )
    parser.add_argument("--hop-url", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--worker-processes, --peers/--no-peers and --chart/--no-chart (bench.rpc and bench.postgres)."""
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=None,
        help="pass `--processes N` to scf worker (default: not passed, the worker's own default)",
    )
    parser.add_argument(
        "--peers",
        default=None,
        metavar="DIR",
        help="the peer benchmarks' folder (default: ../shared/peers beside the repository, if it exists)",
    )
    parser.add_argument("--no-peers", action="store_true", help="do not run the peers (peer fields null)")
    parser.add_argument(
        "--chart",
        type=Path,
        default=None,
        metavar="PATH",
        help="PNG to write (default: bench/out/<bench>-<UTC>.png)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument(
        "--auth",
        choices=("on", "off"),
        default="on",
        help="access control of the bench fleet (on: a client user of its own, checked and charged)",
    )


def chart_path(args: argparse.Namespace, bench: str) -> Path | None:
    if args.no_chart:
        return None
    return Path(args.chart) if args.chart is not None else chart.default_path(bench)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role != "driver":
        asyncio.run(run_hop(args.role, args.hop_url, args.prefetch))
        return 0
    quick = bool(args.quick)
    config = Config(
        warmup=args.warmup if args.warmup is not None else (50 if quick else 200),
        calls=args.calls if args.calls is not None else (100 if quick else 1000),
        throughput_calls=args.throughput_calls
        if args.throughput_calls is not None
        else (500 if quick else 5000),
        concurrency=args.concurrency,
        worker_concurrency=args.worker_concurrency,
        prefetch=args.prefetch,
        timeout=args.timeout,
        amqp_base=args.amqp_url,
        redis_url=args.redis_url,
        log_dir=args.log_dir,
        quick=quick,
        worker_processes=args.worker_processes,
        peers_dir=peers.resolve_peers_dir(args.peers, disabled=args.no_peers),
        chart=chart_path(args, "rpc"),
        auth=args.auth == "on",
    )
    for name in ("warmup", "calls", "throughput_calls", "concurrency", "worker_concurrency", "prefetch"):
        if getattr(config, name) < (0 if name == "warmup" else 1):
            raise SystemExit(f"--{name.replace('_', '-')} must be positive")
    if config.worker_processes is not None and config.worker_processes < 1:
        raise SystemExit("--worker-processes must be positive")
    return drive(config)


if __name__ == "__main__":
    sys.exit(main())
