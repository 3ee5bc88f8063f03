"""PostgreSQL through the fleet against asyncpg used directly, on the same server, in one run.

    .venv/bin/python -m bench.postgres            # full run: 100,000 rows, 5,000 point reads (~1 min)
    .venv/bin/python -m bench.postgres --quick    # smoke run: 10,000 rows, 1,000 point reads

* **insert**: `--rows` rows in `--batch`-row batches. Fleet: one `insert` operation per batch (JSON
  records -> dispatcher -> worker -> `unnest` INSERT in one transaction). Direct: asyncpg
  `copy_records_to_table` per batch. Each at concurrency 1 (per-batch latency) and `--insert-concurrency`
  (rows per second). The target table is emptied before each phase and its row count checked after.
* **point read**: `SELECT ... WHERE id = $1` for random ids at `--read-concurrency` in flight. Fleet: a
  `query` operation; direct: `fetchrow` on an asyncpg pool of the same size.

Runs in a fresh RabbitMQ vhost and a private Redis (bench/redis_target.py), with a dispatcher and a
`--types postgresql` worker as subprocesses. Progress goes to stderr; stdout gets one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from bench.redis_target import BenchRedis
from bench.rpc import Phase, _ratio, rabbitmqctl, run_phase, say
from scf.fleet.client import FleetClient
from scf.fleet.logging import configure_logging
from tests.support.fleet import FleetProcess, fleet_env

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
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


def batch_call(
    side: str, args: argparse.Namespace, client: FleetClient, pool: asyncpg.Pool[asyncpg.Record], table: str
) -> Callable[[], Awaitable[str | None]]:
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
    args: argparse.Namespace, client: FleetClient, pool: asyncpg.Pool[asyncpg.Record], table: str
) -> dict[str, Any]:
    batches = args.rows // args.batch
    out: dict[str, Any] = {}
    for concurrency in (1, args.insert_concurrency):
        for side in ("fleet", "direct"):
            await pool.execute(f"TRUNCATE {table}")
            call = batch_call(side, args, client, pool, table)
            phase = await run_phase(f"insert {side} c={concurrency}", call, batches, concurrency)
            stored = await pool.fetchval(f"SELECT count(*) FROM {table}")
            if stored != args.rows:
                raise RuntimeError(f"{side} insert stored {stored} rows, expected {args.rows}")
            out[f"{side}_c{concurrency}"] = summary(phase, args.batch)
    for c in (1, args.insert_concurrency):
        fleet, direct = out[f"fleet_c{c}"], out[f"direct_c{c}"]
        out[f"ratio_rows_per_second_c{c}"] = _ratio(fleet["rows_per_second"], direct["rows_per_second"])
    return out


async def read_phases(
    args: argparse.Namespace, client: FleetClient, pool: asyncpg.Pool[asyncpg.Record], table: str
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
        await run_phase(f"read {side} warm-up", call, min(500, args.reads), args.read_concurrency)
        phase = await run_phase(f"read {side}", call, args.reads, args.read_concurrency)
        out[side] = summary(phase)
    out["ratio_per_second"] = _ratio(out["fleet"]["per_second"], out["direct"]["per_second"])
    out["ratio_p50"] = _ratio(out["fleet"]["p50_ms"], out["direct"]["p50_ms"])
    return out


async def measure(args: argparse.Namespace, amqp_url: str) -> dict[str, Any]:
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
                {
                    "service_type": "postgresql",
                    "service_name": SERVICE,
                    "host": "127.0.0.1",
                    "port": 5432,
                    "database": "test",
                    "username": "postgres",
                    "custom_config": {"max_connections": max(args.read_concurrency, args.insert_concurrency)},
                }
            )
            inserts = await insert_phases(args, client, pool, table)
            reads = await read_phases(args, client, pool, table)
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()
    return {"insert": inserts, "point_read": reads}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows and 1,000 reads")
    parser.add_argument("--rows", type=int, default=None, help="rows to insert per phase (100000)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per insert operation / COPY")
    parser.add_argument("--insert-concurrency", type=int, default=4, help="batches in flight (second phase)")
    parser.add_argument("--reads", type=int, default=None, help="point reads per side (5000)")
    parser.add_argument("--read-concurrency", type=int, default=16, help="point reads in flight")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="an EMPTY Redis database to use (flushed after) instead of a private redis-server",
    )
    args = parser.parse_args()
    args.rows = args.rows or (10_000 if args.quick else 100_000)
    args.reads = args.reads or (1_000 if args.quick else 5_000)

    configure_logging("warning", json_output=False)
    started = time.perf_counter()
    vhost = f"scf-bench-{uuid.uuid4().hex[:8]}"
    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"
    logs = Path(tempfile.mkdtemp(prefix="scf-bench-pg-"))
    redis_state = BenchRedis.open(args.redis_url)  # first: if it refuses, nothing else was made yet
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    env = fleet_env(amqp_url, redis_state.url, Fernet.generate_key().decode(), logs / "scf-data")
    procs = [
        FleetProcess(["dispatcher"], env, logs / "dispatcher.log"),
        FleetProcess(["worker", "--types", "postgresql", "--concurrency", "32"], env, logs / "worker.log"),
    ]
    status = 0
    try:
        for proc in procs:
            proc.wait_ready()
        result = asyncio.run(measure(args, amqp_url))
        failures = sum(
            v["failures"] for part in result.values() for v in part.values() if isinstance(v, dict)
        )
        result["rows"], result["batch"] = args.rows, args.batch
        result["elapsed_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(result), flush=True)
        status = 1 if failures else 0
    except KeyboardInterrupt:
        status = 130
    finally:
        for proc in procs:
            proc.stop()
        rabbitmqctl("delete_vhost", vhost, check=False)
        redis_state.close()
        say(f"process logs in {logs}")
    return status


if __name__ == "__main__":
    sys.exit(main())
