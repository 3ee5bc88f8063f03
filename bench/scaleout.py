"""Scale-out: throughput of a cheap keyed PostgreSQL operation at 1, 2, 4 ... worker processes.

    .venv/bin/python -m bench.scaleout                      # 1, 2 and 4 worker processes, 4000 calls each
    .venv/bin/python -m bench.scaleout --quick              # 1000 calls each (~1 min)
    .venv/bin/python -m bench.scaleout --processes 1,2,3,4 --calls 6000 --op query

For each size the bench starts `scf worker --types postgresql --processes N` (one supervisor, N worker
processes, as an operator sizes a machine), warms it up, then sends `--calls` operations at
`--concurrency` in flight from one client: `insert` (default) is a one-row insert with an idempotency
key (the ledger row is committed with the effect, every row is counted after the phase), `query` a
`SELECT $1::int`; `--route dispatcher` sends every call through a dispatcher instead of
`FleetClient`'s fast path. Around each measured phase it reads the CPU of every process group (client,
dispatcher, the workers' tree, RabbitMQ, the private Redis, PostgreSQL: bench/procstat.py), so each size
reports ops/s, latency, CPU per operation by group, the cores each group kept busy and its share of the
CPU; `speedup` is ops/s over the first size's and `plateau_at` the first size that added less than
`--plateau-gain` (10 %) over the size before it. RabbitMQ and PostgreSQL are the machine's servers
found by pid (`rabbitmqctl eval 'os:getpid().'`, the postmaster), not every `beam.smp` or `postgres`:
other tenants' private nodes are left out. `--rounds` (3) measures every size that many times,
interleaved, and reports each size's median round, so other tenants' load spells hit every size alike.
Progress and a table go to stderr, one JSON line to stdout; a failed call makes the exit status 1.
Runs in a fresh vhost, a private Redis and a table of its own per size (all removed at the end), with
access control on as in production (`--auth off` to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import procstat
from bench.fleetstats import RouteCounter, metrics_port
from bench.postgres import PG_DSN, connector_body, summary
from bench.rpc import Call, machine, run_phase
from bench.stage import BenchStage, begin, rabbitmqctl, say
from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess

SERVICE = "bench_scale"
GROUPS = ("client", "dispatcher", "worker", "rabbitmq", "redis", "postgres")


@dataclass(frozen=True)
class Servers:
    """The pids of the servers this run uses: the machine's RabbitMQ node and PostgreSQL postmaster (so
    other tenants' private nodes and clusters are not counted), the private Redis. None: by name."""

    rabbitmq: int | None
    postgres: int | None
    redis: int | None

    def groups(self, dispatcher: int, worker: int) -> dict[str, procstat.PidSource]:
        me = os.getpid()
        rabbit, pg = procstat.tree(self.rabbitmq), procstat.tree(self.postgres)
        return {
            "client": lambda: [me],
            "dispatcher": procstat.tree(dispatcher),
            "worker": procstat.tree(worker),
            "rabbitmq": rabbit if self.rabbitmq else procstat.by_name(procstat.RABBITMQ_NAMES),
            "redis": procstat.tree(self.redis) if self.redis else procstat.by_name(procstat.REDIS_NAMES),
            "postgres": pg if self.postgres else procstat.by_name(procstat.POSTGRES_NAMES),
        }


def broker_pid() -> int | None:
    """The OS pid of the RabbitMQ node rabbitmqctl talks to (the one on 5672)."""
    try:
        return int(rabbitmqctl("eval", "os:getpid().", check=False).strip().strip('"'))
    except (ValueError, OSError, subprocess.SubprocessError):
        return None


async def postmaster_pid() -> int | None:
    """The postmaster of the PostgreSQL at PG_DSN (first line of its postmaster.pid; superuser only)."""
    try:
        conn = await asyncpg.connect(PG_DSN)
        try:
            value = await conn.fetchval("SELECT split_part(pg_read_file('postmaster.pid'), E'\\n', 1)")
        finally:
            await conn.close()
        return int(value)
    except (OSError, ValueError, TypeError, asyncpg.PostgresError):
        return None


def operation_call(op: str, client: FleetClient, table: str, run: str) -> Call:
    """A call of the chosen operation; each insert carries the next number and its own idempotency key."""
    numbers = iter(range(1 << 62))

    async def insert() -> str | None:
        n = next(numbers)
        result = await client.execute_operation(
            SERVICE,
            {
                "operation": "insert",
                "idempotency_key": f"{run}-{n}",
                "parameters": {"table": table},
                "data": {"records": [{"n": n, "run": run}]},
            },
        )
        return None if result.status == "success" else f"{result.error}"

    async def query() -> str | None:
        n = next(numbers) % 1000
        result = await client.execute_operation(
            SERVICE,
            {"operation": "query", "parameters": {"query": "SELECT $1::int AS n", "query_params": [n]}},
        )
        if result.status != "success":
            return f"{result.error}"
        return None if result.result_data["rows"] == [{"n": n}] else f"wrong answer for {n}"

    return insert if op == "insert" else query


def cores_busy(cpu: dict[str, float | None], per_second: float | None) -> dict[str, float | None]:
    """Cores each group kept busy: its CPU per op times ops per second."""
    out: dict[str, float | None] = {}
    for group in (*GROUPS, "total"):
        us = cpu.get(group)
        out[group] = None if us is None or not per_second else round(us * per_second / 1e6, 2)
    return out


def shares(cpu: dict[str, float | None]) -> dict[str, float | None]:
    """Each group's share of the CPU all groups spent (0..1)."""
    total = cpu.get("total")
    out: dict[str, float | None] = {}
    for group in GROUPS:
        us = cpu.get(group)
        out[group] = None if not total or us is None else round(us / total, 3)
    return out


def plateau(sizes: list[dict[str, Any]], gain: float) -> int | None:
    """The first size whose ops/s grew less than `gain` (a fraction) over the previous size's."""
    for before, after in itertools.pairwise(sizes):
        if (
            before["per_second"]
            and after["per_second"]
            and after["per_second"] < before["per_second"] * (1 + gain)
        ):
            return int(after["processes"])
    return None


async def measure_size(
    args: argparse.Namespace,
    processes: int,
    url: str,
    env: dict[str, str],
    logs: Path,
    servers: Servers,
    *,
    first: bool,
) -> dict[str, Any]:
    """Start a dispatcher and `--processes N` workers, warm up, measure, count rows, stop them."""
    worker_args = ["worker", "--types", "postgresql", "--concurrency", str(args.worker_concurrency)]
    procs = [
        FleetProcess(["dispatcher"], env, logs / f"dispatcher-{processes}p.log"),
        FleetProcess([*worker_args, "--processes", str(processes)], env, logs / f"worker-{processes}p.log"),
    ]
    dispatcher, worker = procs
    table = f"bench_scale_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(PG_DSN, min_size=1, max_size=2)
    assert pool is not None
    await pool.execute(f"CREATE TABLE {table} (n bigint NOT NULL, run text NOT NULL)")
    try:
        for proc in procs:
            await asyncio.to_thread(proc.wait_ready, 120)
        groups = servers.groups(dispatcher.proc.pid, worker.proc.pid)
        routes = RouteCounter(metrics_port(dispatcher.own_output()))
        async with await FleetClient.connect(url, timeout=60, fast_path=args.route == "fast") as client:
            if first:
                await client.create_connector(connector_body(SERVICE, args.pool_size))
            run = uuid.uuid4().hex[:8]
            call = operation_call(args.op, client, table, run)
            # one call alone first: the client learns the connector's type (as a long-running caller has),
            # so the warm-up burst is not 64 first calls at once through a cold dispatcher
            warm = await run_phase(f"{processes}p first call", call, 1, 1)
            burst = await run_phase(f"{processes}p warm-up", call, args.warmup - 1, args.concurrency)
            warm.latencies += burst.latencies
            warm.failures += burst.failures
            warm.errors += burst.errors
            meter = procstat.CpuMeter(groups)
            routes.start()
            meter.start()
            phase = await run_phase(f"{processes}p measured", call, args.calls, args.concurrency)
            cpu = meter.stop(phase.done)
            routing = routes.stop(phase.done)
        out: dict[str, Any] = {"processes": processes, **summary(phase)}
        out["failures"] += warm.failures
        out["cpu_us_per_op"] = cpu
        out["cores_busy"] = cores_busy(cpu, phase.throughput())
        out["cpu_share"] = shares(cpu)
        busy, ours = cpu.get("machine_cores_busy"), out["cores_busy"].get("total")
        # what the machine did besides this run's processes (other tenants; their share of the servers
        # this run measures is counted in those groups, unavoidably)
        out["others_cores_busy"] = round(busy - ours, 2) if busy is not None and ours is not None else None
        worker_us = cpu.get("worker")
        out["worker_cores_busy_per_process"] = (
            round(worker_us * (phase.throughput() or 0) / 1e6 / processes, 2)
            if worker_us is not None
            else None
        )
        out["routing"] = routing
        if phase.errors or warm.errors:
            out["failure_examples"] = (warm.errors + phase.errors)[:5]
        if args.op == "insert":
            rows = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE run = $1", run)
            out["rows_stored"] = rows
            if rows != warm.done + phase.done - out["failures"]:
                calls = warm.done + phase.done
                say(f"{processes}p: {rows} rows stored for {calls} inserts ({out['failures']} failed)")
                out["failures"] += 1
        return out
    finally:
        for proc in reversed(procs):
            await asyncio.to_thread(proc.stop)
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()


def table(sizes: list[dict[str, Any]]) -> str:
    head = f"{'procs':>5} {'ops/s':>7} {'speedup':>7} {'p50 ms':>7} {'p99 ms':>7} " + " ".join(
        f"{g[:6]:>6}" for g in (*GROUPS, "total")
    )
    lines = [head, " " * 38 + "CPU µs per operation by group; then cores busy"]
    for s in sizes:
        cpu, busy = s["cpu_us_per_op"], s["cores_busy"]
        lines.append(
            f"{s['processes']:>5} {s['per_second'] or 0:>7.0f} {s.get('speedup') or 0:>7.2f} "
            f"{s['p50_ms'] or 0:>7.1f} {s['p99_ms'] or 0:>7.1f} "
            + " ".join(f"{cpu.get(g) or 0:>6.0f}" for g in (*GROUPS, "total"))
        )
        others = s.get("others_cores_busy")
        lines.append(
            " " * 38
            + " ".join(f"{busy.get(g) or 0:>6.2f}" for g in (*GROUPS, "total"))
            + f"  (others {others}; ops/s by round {s.get('per_second_rounds')})"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=doc.split("\n")[0])
    parser.add_argument("--processes", default="1,2,4", help="worker process counts to measure, in order")
    parser.add_argument("--op", choices=("insert", "query"), default="insert", help="keyed insert or a query")
    parser.add_argument(
        "--route",
        choices=("fast", "dispatcher"),
        default="fast",
        help="fast: straight to scf.ops.postgresql (the default client); dispatcher: every call through one",
    )
    parser.add_argument("--quick", action="store_true", help="1000 calls per size, 200 warm-up, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds over every size, interleaved (3)")
    parser.add_argument("--calls", type=int, default=None, help="measured calls per size (4000)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per size (500)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight from the client")
    parser.add_argument(
        "--worker-concurrency", type=int, default=32, help="scf worker --concurrency (per process)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=8, help="the connector's max_connections per process"
    )
    parser.add_argument(
        "--plateau-gain", type=float, default=0.10, help="growth below this fraction = plateau"
    )
    parser.add_argument(
        "--auth", choices=("on", "off"), default="on", help="access control of the bench fleet"
    )
    args = parser.parse_args(argv)
    args.processes = [int(p) for p in args.processes.split(",") if p.strip()]
    args.calls = args.calls or (1000 if args.quick else 4000)
    args.warmup = args.warmup or (200 if args.quick else 500)
    args.warmup = max(args.warmup, 2)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if not args.processes or min(*args.processes, args.calls, args.warmup, args.concurrency, args.rounds) < 1:
        raise SystemExit("--processes, --calls, --warmup, --concurrency and --rounds must be positive")
    return args


async def measure(
    args: argparse.Namespace, url: str, env: dict[str, str], logs: Path, redis_pid: int | None
) -> list[dict[str, Any]]:
    """Every size once per round, the sizes interleaved (1, 2, 4, 1, 2, 4 ...) so that a spell of other
    tenants' load hits every size alike; each size reports its median round (by ops/s)."""
    servers = Servers(broker_pid(), await postmaster_pid(), redis_pid)
    say(f"RabbitMQ node pid {servers.rabbitmq}, PostgreSQL postmaster pid {servers.postgres}")
    rounds: dict[int, list[dict[str, Any]]] = {p: [] for p in args.processes}
    for round_no in range(args.rounds):
        for index, processes in enumerate(args.processes):
            say(f"round {round_no + 1}/{args.rounds}: {processes} worker process(es)")
            first = round_no == 0 and index == 0
            rounds[processes].append(
                await measure_size(args, processes, url, env, logs, servers, first=first)
            )
    sizes: list[dict[str, Any]] = []
    for processes in args.processes:
        runs = sorted(rounds[processes], key=lambda r: r["per_second"] or 0)
        size = dict(runs[len(runs) // 2])
        size["per_second_rounds"] = [r["per_second"] for r in rounds[processes]]
        size["others_cores_busy_rounds"] = [r["others_cores_busy"] for r in rounds[processes]]
        size["failures"] = sum(r["failures"] for r in runs)
        sizes.append(size)
    base = sizes[0]["per_second"]
    for size in sizes:
        size["speedup"] = round(size["per_second"] / base, 2) if base and size["per_second"] else None
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, background = begin()
    stage = BenchStage("scale", auth=args.auth == "on")
    status = 0
    sizes: list[dict[str, Any]] | None = None
    try:
        env = stage.open()
        env.pop("SCF_PROCESSES", None)  # --processes N decides
        assert stage.redis is not None
        sizes = asyncio.run(measure(args, stage.client_url, env, stage.logs, stage.redis.pid))
        if sum(s["failures"] for s in sizes):
            say(f"FAILED calls: {sum(s['failures'] for s in sizes)}")
            status = 1
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stage.close()
        say(f"process logs in {stage.logs}")
    if sizes is not None:
        say(
            f"scale-out, {args.op} by the {args.route} route at {args.concurrency} in flight:\n{table(sizes)}"
        )
        line = {
            "op": args.op,
            "route": args.route,
            "sizes": sizes,
            "plateau_at": plateau(sizes, args.plateau_gain),
            "concurrency": args.concurrency,
            "worker_concurrency": args.worker_concurrency,
            "calls": args.calls,
            "rounds": args.rounds,
            "auth": args.auth,
            "machine": {**machine(), "bg_cores_busy_before": background},
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(line), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
