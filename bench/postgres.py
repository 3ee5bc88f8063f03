"""PostgreSQL through the fleet against asyncpg used directly and against the peers, in one run.

    .venv/bin/python -m bench.postgres            # full: 100,000 rows, 5,000 point reads (~3 min with peers)
    .venv/bin/python -m bench.postgres --quick    # smoke run: 10,000 rows, 1,000 point reads (~1-2 min)

* **insert**: `--rows` rows in `--batch`-row batches. Fleet: one `insert` operation per batch (JSON
  records -> dispatcher -> worker -> one transaction). Direct: asyncpg `copy_records_to_table` per batch.
  Each at concurrency 1 (per-batch latency) and `--insert-concurrency` (rows per second). The target
  table is emptied before each phase and its row count checked after; the worker tree's RSS is sampled
  through all of them (`worker_rss_peak_mib`).
* **point read**: `SELECT ... WHERE id = $1` for random ids at `--read-concurrency` in flight and one at
  a time. Fleet: a `query` operation; direct: `fetchrow` on an asyncpg pool of the same size.

Every measured phase carries the CPU each process group spent per call (bench/procstat.py). Then the
peers run (`pg_query.py`, `pg_insert.py`; bench/peers.py), the ratios of issue 12 are printed
(bench/report.py) and a PNG chart is written (bench/chart.py). Runs in a fresh RabbitMQ vhost and a
private Redis (bench/redis_target.py), with a dispatcher and a `--types postgresql` worker as
subprocesses. Progress goes to stderr; stdout gets one JSON line; a failed call makes the status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench import chart, peers, procstat, report
from bench.fleetstats import RouteCounter, metrics_port
from bench.rpc import (
    Call,
    Phase,
    _ratio,
    add_common_arguments,
    chart_path,
    machine,
    run_phase,
)
from bench.stage import BenchStage, begin, say, sigterm_as_interrupt
from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def connector_body(service_name: str, max_connections: int) -> dict[str, Any]:
    """The bench's connector to the machine's PostgreSQL (`test`, trust auth), `max_connections` pooled."""
    return {
        "service_type": "postgresql",
        "service_name": service_name,
        "host": "127.0.0.1",
        "port": 5432,
        "database": "test",
        "username": "postgres",
        "custom_config": {"max_connections": max_connections},
    }


SERVICE = "bench_pg"
COLUMNS = ("id", "sku", "qty", "price", "created_at")


def records(start: int, count: int) -> list[tuple[Any, ...]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [(i, f"sku-{i % 977}", i % 100, f"{i % 1000}.25", now) for i in range(start, start + count)]


def as_json(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {"id": r[0], "sku": r[1], "qty": r[2], "price": r[3], "created_at": r[4].isoformat()} for r in rows
    ]


def summary(phase: Phase, rows_per_call: int = 1) -> dict[str, Any]:
    return {
        "calls": phase.done,
        "failures": phase.failures,
        "p50_ms": phase.percentile_ms(50),
        "p99_ms": phase.percentile_ms(99),
        "mean_ms": phase.mean_ms(),
        "per_second": phase.throughput(),
        "rows_per_second": round(phase.done * rows_per_call / phase.elapsed) if phase.elapsed else None,
    }


@dataclass(frozen=True)
class Probes:
    """What every measured phase samples: CPU by process group, and the dispatcher's route counter."""

    groups: dict[str, procstat.PidSource]
    routes: RouteCounter
    worker_pid: int


async def measured_phase(
    label: str,
    call: Call,
    total: int,
    concurrency: int,
    probes: Probes,
    *,
    fleet: bool,
    rows_per_call: int = 1,
) -> dict[str, Any]:
    """`run_phase` plus the CPU each process group spent per call (and per row when a call is a batch)."""
    meter = procstat.CpuMeter(probes.groups)
    if fleet:
        probes.routes.start()
    meter.start()
    phase = await run_phase(label, call, total, concurrency)
    out = summary(phase, rows_per_call)
    out["cpu_us_per_op"] = meter.stop(phase.done)
    if rows_per_call > 1:
        out["cpu_us_per_row"] = meter.per(phase.done * rows_per_call)
    if fleet:
        out["routing"] = probes.routes.stop(phase.done)
    if phase.errors:
        out["failure_examples"] = phase.errors
    return out


def batch_call(
    side: str, args: argparse.Namespace, client: FleetClient, pool: asyncpg.Pool[asyncpg.Record], table: str
) -> Call:
    """One call per batch, each taking the next slice of ids."""
    counter = iter(range(args.rows // args.batch))

    async def fleet_call() -> str | None:
        start = next(counter) * args.batch
        body = {"table_name": table, "records": as_json(records(start, args.batch))}
        result = await client.execute_operation(SERVICE, {"operation": "insert", "data": body})
        return None if result.status == "success" else f"{result.error}"

    async def direct_call() -> str | None:
        start = next(counter) * args.batch
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(table, records=records(start, args.batch), columns=COLUMNS)
        return None

    return fleet_call if side == "fleet" else direct_call


async def insert_phases(
    args: argparse.Namespace,
    client: FleetClient,
    pool: asyncpg.Pool[asyncpg.Record],
    table: str,
    probes: Probes,
) -> dict[str, Any]:
    batches = args.rows // args.batch
    out: dict[str, Any] = {}
    rss = procstat.RssSampler(probes.worker_pid).start()  # the worker tree's memory through every phase
    out["worker_rss_start_mib"] = procstat.mib(rss.peak)
    try:
        for concurrency in (1, args.insert_concurrency):
            for side in ("fleet", "direct"):
                await pool.execute(f"TRUNCATE {table}")
                call = batch_call(side, args, client, pool, table)
                out[f"{side}_c{concurrency}"] = await measured_phase(
                    f"insert {side} c={concurrency}", call, batches, concurrency, probes,
                    fleet=side == "fleet", rows_per_call=args.batch,
                )  # fmt: skip
                stored = await pool.fetchval(f"SELECT count(*) FROM {table}")
                if stored != args.rows:
                    raise RuntimeError(f"{side} insert stored {stored} rows, expected {args.rows}")
    finally:
        rss.stop()
    for c in (1, args.insert_concurrency):
        fleet, direct = out[f"fleet_c{c}"], out[f"direct_c{c}"]
        out[f"ratio_rows_per_second_c{c}"] = _ratio(fleet["rows_per_second"], direct["rows_per_second"])
    out["worker_rss_peak_mib"] = procstat.mib(rss.peak)
    out["worker_rss_samples"] = rss.samples
    say(
        f"insert: worker RSS {out['worker_rss_start_mib']} MiB at start,"
        f" peak {out['worker_rss_peak_mib']} MiB ({rss.samples} samples every {rss.interval}s)"
    )
    return out


async def read_phases(
    args: argparse.Namespace,
    client: FleetClient,
    pool: asyncpg.Pool[asyncpg.Record],
    table: str,
    probes: Probes,
) -> dict[str, Any]:
    rng = random.Random(7)
    query = f"SELECT id, sku, qty, price FROM {table} WHERE id = $1"

    async def fleet_call() -> str | None:
        wanted = rng.randrange(args.rows)
        result = await client.execute_operation(
            SERVICE, {"operation": "query", "parameters": {"query": query, "query_params": [wanted]}}
        )
        if result.status != "success":
            return f"{result.error}"
        rows = result.result_data["rows"]
        return None if len(rows) == 1 and rows[0]["id"] == wanted else f"wrong rows for {wanted}"

    async def direct_call() -> str | None:
        wanted = rng.randrange(args.rows)
        row = await pool.fetchrow(query, wanted)
        return None if row is not None and row["id"] == wanted else f"wrong row for {wanted}"

    out: dict[str, Any] = {}
    for side, call in (("fleet", fleet_call), ("direct", direct_call)):
        warm = await run_phase(f"read {side} warm-up", call, min(500, args.reads), args.read_concurrency)
        out[side] = await measured_phase(
            f"read {side} c={args.read_concurrency}", call, args.reads, args.read_concurrency, probes,
            fleet=side == "fleet",
        )  # fmt: skip
        out[side]["failures"] += warm.failures
        out[f"{side}_c1"] = await measured_phase(
            f"read {side} c=1", call, args.latency_reads, 1, probes, fleet=side == "fleet"
        )
    out["ratio_per_second"] = _ratio(out["fleet"]["per_second"], out["direct"]["per_second"])
    out["ratio_p50"] = _ratio(out["fleet"]["p50_ms"], out["direct"]["p50_ms"])
    out["ratio_p50_c1"] = _ratio(out["fleet_c1"]["p50_ms"], out["direct_c1"]["p50_ms"])
    return out


async def measure(args: argparse.Namespace, amqp_url: str, probes: Probes) -> dict[str, Any]:
    table = f"bench_rows_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(
        PG_DSN, min_size=1, max_size=max(args.read_concurrency, args.insert_concurrency)
    )
    assert pool is not None
    await pool.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, sku text NOT NULL, qty int NOT NULL, "
        "price numeric(10,2) NOT NULL, created_at timestamptz NOT NULL)"
    )
    try:
        async with await FleetClient.connect(amqp_url, timeout=60) as client:
            await client.create_connector(
                connector_body(SERVICE, max(args.read_concurrency, args.insert_concurrency))
            )
            inserts = await insert_phases(args, client, pool, table, probes)
            reads = await read_phases(args, client, pool, table, probes)
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()
    return {"insert": inserts, "point_read": reads}


def failures(result: dict[str, Any]) -> int:
    return sum(
        v["failures"]
        for part in (result["insert"], result["point_read"])
        for v in part.values()
        if isinstance(v, dict) and "failures" in v
    )


# === the JSON line, tables and chart ===================================================================


def result_line(
    args: argparse.Namespace, measured: dict[str, Any], runs: dict[str, peers.PeerRun]
) -> dict[str, Any]:
    line = dict(measured)
    line["peers"] = peers.pg_peers(runs, args.read_concurrency, args.batch)
    line["ratios"] = report.pg_ratios(line)
    line["goals"] = report.judge(line["ratios"], report.PG_GOALS)
    line["rows"], line["batch"] = args.rows, args.batch
    line["concurrency"] = {
        "insert": args.insert_concurrency,
        "read": args.read_concurrency,
        "worker": args.worker_concurrency,
        "worker_processes": args.worker_processes,
        "quick": args.quick,
    }
    return line


def chart_panels(line: dict[str, Any]) -> list[chart.Panel]:
    """Point reads (throughput, p50/p99 loaded and one at a time, CPU) and inserts (rows/s, CPU per row)."""
    read, insert = line.get("point_read") or {}, line.get("insert") or {}
    pr, pi = report.dig(line, "peers", "point_read") or {}, report.dig(line, "peers", "insert") or {}
    rc, ic = report.dig(line, "concurrency", "read"), report.dig(line, "concurrency", "insert")

    def num(row: Any, *path: str) -> float | None:
        return report.number(report.dig(row, *path))

    readers = [
        ("fleet (query operation)", read.get("fleet"), read.get("fleet_c1"), True),
        ("minimal aio-pika + asyncpg worker", pr.get("minimal_worker"), None, False),
        ("Celery prefork 2", pr.get("celery_prefork2"), None, False),
        ("asyncpg pool (in-run, no broker)", read.get("direct"), read.get("direct_c1"), False),
    ]

    def c1(loaded: Any, single: Any, key: str) -> float | None:
        return num(single, key) if single is not None else num(loaded, f"c1_{key}")

    inserters = [
        (f"fleet insert, {ic} in flight", insert.get(f"fleet_c{ic}"), "cpu_us_per_row", True),
        (
            f"asyncpg COPY per batch, {ic} in flight (in-run)",
            insert.get(f"direct_c{ic}"),
            "cpu_us_per_row",
            False,
        ),
        ("minimal worker, all batches in flight", pi.get("minimal_worker"), "cpu_us_per_row", False),
        ("Celery prefork 2, all batches in flight", pi.get("celery_prefork2"), "cpu_us_per_row", False),
        ("asyncpg COPY per 1000, sequential", pi.get("copy_b1000"), "cpu_us_per_row", False),
    ]
    return [
        chart.Panel(
            f"Point read throughput, {rc} in flight", "reads/s (higher is better)", ("reads/s",),
            tuple(chart.Bar(label, {"reads/s": num(loaded, "per_second")}, fleet)
                  for label, loaded, _, fleet in readers),
        ),
        chart.Panel(
            f"Point read latency, {rc} in flight", "ms (lower is better)", ("p50", "p99"),
            tuple(chart.Bar(label, {"p50": num(loaded, "p50_ms"), "p99": num(loaded, "p99_ms")}, fleet)
                  for label, loaded, _, fleet in readers),
        ),
        chart.Panel(
            "Point read latency, one at a time", "ms (lower is better)", ("p50", "p99"),
            tuple(chart.Bar(label, {s: c1(loaded, single, f"{s}_ms") for s in ("p50", "p99")}, fleet)
                  for label, loaded, single, fleet in readers),
        ),
        chart.cpu_panel(
            f"CPU per point read, {rc} in flight",
            [(label, report.dig(loaded, "cpu_us_per_op"), fleet) for label, loaded, _, fleet in readers],
        ),
        chart.Panel(
            f"Insert {line.get('rows')} rows in batches of {line.get('batch')}", "rows/s (higher is better)",
            ("rows/s",),
            tuple(chart.Bar(label, {"rows/s": num(row, "rows_per_second")}, fleet)
                  for label, row, _, fleet in inserters),
        ),
        chart.cpu_panel(
            "CPU per inserted row",
            [(label, report.dig(row, key), fleet) for label, row, key, fleet in inserters],
            unit="row",
        ),
    ]  # fmt: skip


def finish(
    args: argparse.Namespace, measured: dict[str, Any], started: float, background: float | None = None
) -> dict[str, Any]:
    """After the fleet is stopped: run the peers, print the tables and the JSON line, draw the chart."""
    jobs = peers.pg_jobs(
        read_concurrency=args.read_concurrency,
        insert_concurrency=args.insert_concurrency,
        rows=args.rows,
        batch=args.batch,
        quick=args.quick,
    )
    line = result_line(args, measured, peers.run_peers(args.peers_dir, jobs))
    line["machine"] = {**machine(), "bg_cores_busy_before": background}
    say(
        "ratios (issue 12; p50 ratios: lower is better):\n"
        + report.ratio_table(line["ratios"], report.PG_GOALS)
    )
    read, ic = line["point_read"], args.insert_concurrency
    say(
        f"CPU per point read by process group ({args.read_concurrency} in flight):\n"
        + report.cpu_table(
            [
                ("fleet", report.dig(read, "fleet", "cpu_us_per_op")),
                ("asyncpg pool", report.dig(read, "direct", "cpu_us_per_op")),
                (
                    "minimal_worker",
                    report.dig(line, "peers", "point_read", "minimal_worker", "cpu_us_per_op"),
                ),
                (
                    "celery_prefork2",
                    report.dig(line, "peers", "point_read", "celery_prefork2", "cpu_us_per_op"),
                ),
            ]
        )
    )
    say(
        "CPU per inserted row by process group:\n"
        + report.cpu_table(
            [
                (f"fleet c{ic}", report.dig(line, "insert", f"fleet_c{ic}", "cpu_us_per_row")),
                (f"copy c{ic}", report.dig(line, "insert", f"direct_c{ic}", "cpu_us_per_row")),
                *(
                    (name, report.dig(line, "peers", "insert", name, "cpu_us_per_row"))
                    for name in ("minimal_worker", "celery_prefork2", "copy_b1000")
                ),
            ]
        )
    )
    line["chart"] = None
    if args.chart_path is not None:
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            footer = (
                f"{line['machine']['cpus']} CPUs shared by client, broker, PostgreSQL, Redis, all processes "
                f"({background} busy before the run, load average {line['machine']['loadavg_1m']}); "
                f"{'--quick' if args.quick else 'full'} run; peers from ../shared/peers in the same run\n"
                + report.goal_summary(line["ratios"], report.PG_GOALS)
            )
            line["chart"] = str(
                chart.write_chart(
                    args.chart_path,
                    f"bench.postgres: the fleet beside its peers ({stamp})",
                    chart_panels(line),
                    footer,
                )
            )
            say(f"chart: {line['chart']}")
        except Exception as exc:  # a chart that cannot be drawn must not lose the figures
            say(f"chart not written: {type(exc).__name__}: {exc}")
    line["elapsed_s"] = round(time.perf_counter() - started, 1)
    return line


# === the run ===========================================================================================


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=doc.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 1,000 reads, 200 one at a time")
    parser.add_argument("--rows", type=int, default=None, help="rows to insert per phase (100000)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per insert operation / COPY")
    parser.add_argument("--insert-concurrency", type=int, default=4, help="batches in flight (second phase)")
    parser.add_argument(
        "--reads", type=int, default=None, help="point reads per side at --read-concurrency (5000)"
    )
    parser.add_argument(
        "--latency-reads", type=int, default=None, help="point reads per side one at a time (1000)"
    )
    parser.add_argument("--read-concurrency", type=int, default=16, help="point reads in flight")
    parser.add_argument("--worker-concurrency", type=int, default=32, help="scf worker --concurrency")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="an EMPTY Redis database to use (flushed after) instead of a private redis-server",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    args.rows = args.rows or (10_000 if args.quick else 100_000)
    args.reads = args.reads or (1_000 if args.quick else 5_000)
    args.latency_reads = args.latency_reads or (200 if args.quick else 1_000)
    for name in ("rows", "batch", "insert_concurrency", "reads", "latency_reads", "read_concurrency"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive")
    if args.rows < args.batch:
        raise SystemExit("--rows must be at least --batch")
    args.peers_dir = peers.resolve_peers_dir(args.peers, disabled=args.no_peers)
    args.chart_path = chart_path(args, "postgres")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, background = begin()
    stage = BenchStage("pg", auth=args.auth == "on", redis_url=args.redis_url)
    try:
        env = stage.open()
    except BaseException:
        stage.close()
        raise
    logs = stage.logs
    worker = ["worker", "--types", "postgresql", "--concurrency", str(args.worker_concurrency)]
    if args.worker_processes is not None:
        worker += ["--processes", str(args.worker_processes)]
    say(f"starting dispatcher and `scf {' '.join(worker)}`")
    dispatcher = FleetProcess(["dispatcher"], env, logs / "dispatcher.log")
    worker_proc = FleetProcess(worker, env, logs / "worker.log")
    procs = [dispatcher, worker_proc]
    status = 0
    measured: dict[str, Any] | None = None
    try:
        for proc in procs:
            proc.wait_ready()
        probes = Probes(
            procstat.standard_groups(
                processes={"dispatcher": dispatcher.proc.pid, "worker": worker_proc.proc.pid},
                redis_pid=stage.redis.pid if stage.redis else None,
            ),
            RouteCounter(metrics_port(dispatcher.own_output())),
            worker_proc.proc.pid,
        )
        measured = asyncio.run(measure(args, stage.client_url, probes))
        if failures(measured):
            say(f"FAILED calls: {failures(measured)}")
            status = 1
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("cleaning up (stopping processes, deleting the vhost and our redis state)")
        for proc in procs:
            proc.stop()
        stage.close()
        say(f"process logs in {logs}")
    if measured is not None and status in (0, 1):
        # The fleet is stopped before the peers run: they get the machine to themselves, as it had.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, sigterm_as_interrupt)
        if status == 1:
            say("peers skipped: the fleet's figures are not valid with failed calls")
            args.peers_dir = None
        try:
            print(json.dumps(finish(args, measured, started, background)), flush=True)
        except KeyboardInterrupt:
            say("interrupted")
            status = 130
    say(f"done in {time.perf_counter() - started:.1f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
