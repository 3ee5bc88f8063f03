"""CSV by reference and into a sink, through the fleet: a 50 MB file streamed from S3 into PostgreSQL
with the worker's memory watched, files refused by their limits, and progress reported to the caller.

Runs its own dispatcher and worker (own vhost and Redis database) so the worker's memory is its own.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from scf.fleet.client import FleetClient
from tests.support.fleet import FleetProcess, fleet_env
from tests.support.pdfs import text_pdf
from tests.support.s3 import S3Server, moto_server
from tests.support.services import PG_DSN, Vhost, claim_redis_db, create_vhost, delete_vhost

pytestmark = pytest.mark.integration

BIG_ROWS = 1_250_000
TABLE = f"csv_sink_target_{uuid.uuid4().hex[:10]}"  # unique: a same-named user table is never touched


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def sink_fleet(
    secret_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Vhost, FleetProcess]]:
    vhost, redis_db = create_vhost(), claim_redis_db()
    logs = tmp_path_factory.mktemp("sink-fleet")
    env = fleet_env(vhost.amqp_url, redis_db.url, secret_key, logs)
    dispatcher = FleetProcess(["dispatcher"], env, logs / "dispatcher.log")
    worker = FleetProcess(["worker", "--types", "csv,minio,pdf,postgresql"], env, logs / "worker.log")
    try:
        dispatcher.wait_ready()
        worker.wait_ready()
        yield vhost, worker
    finally:
        worker.stop()
        dispatcher.stop()
        redis_db.release()
        delete_vhost(vhost)


@dataclass
class Lake:
    """A fleet client with a lake (minio), a warehouse (postgresql) and a files (csv) connector."""

    client: FleetClient
    bucket: str


@pytest.fixture(scope="module")
async def lake(sink_fleet: tuple[Vhost, FleetProcess], s3: S3Server) -> AsyncIterator[Lake]:
    vhost, _ = sink_fleet
    bucket = s3.new_bucket()
    async with await FleetClient.connect(vhost.amqp_url, timeout=60) as client:
        await client.create_connector(
            {
                "service_type": "minio",
                "service_name": "lake",
                "custom_config": s3.custom_config(bucket, max_ingest_bytes=200_000_000),
            }
        )
        await client.create_connector(
            {
                "service_type": "postgresql",
                "service_name": "warehouse",
                "host": "127.0.0.1",
                "database": "test",
                "username": "postgres",
            }
        )
        await client.create_connector(
            {
                "service_type": "csv",
                "service_name": "files",
                "custom_config": {"max_bytes": 200_000_000, "max_rows": 2_000_000},
            }
        )
        yield Lake(client, bucket)
    s3.drop_bucket(bucket)


def put(s3: S3Server, bucket: str, key: str, body: bytes) -> None:
    s3.admin().put_object(bucket, key, io.BytesIO(body), len(body), part_size=16 * 1024 * 1024)


def big_csv(rows: int) -> bytes:
    rng = random.Random(7)
    lines = ["id,name,amount,created\n"]
    for i in range(rows):
        day = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        lines.append(f"{i},name-{rng.randrange(10**9)},{rng.randrange(10**6) / 100},{day}\n")
    return "".join(lines).encode()


async def test_csv_is_read_by_reference_to_an_object(lake: Lake, s3: S3Server) -> None:
    put(s3, lake.bucket, "small.csv", b"city;temp\nOslo;-3\nLima;24\n")

    result = await lake.client.execute_operation(
        "files", {"operation": "ingest", "data": {"object": {"service_name": "lake", "key": "small.csv"}}}
    )

    assert result.status == "success", result.error
    assert result.result_data["records"] == [{"city": "Oslo", "temp": -3}, {"city": "Lima", "temp": 24}]


async def test_a_pdf_is_read_by_reference_to_an_object(lake: Lake, s3: S3Server) -> None:
    put(s3, lake.bucket, "report.pdf", text_pdf(pages=2, title="Object report"))
    await lake.client.create_connector({"service_type": "pdf", "service_name": "documents"})

    result = await lake.client.execute_operation(
        "documents",
        {"operation": "ingest", "data": {"object": {"service_name": "lake", "key": "report.pdf"}}},
    )

    assert result.status == "success", result.error
    assert result.result_data["page_count"] == 2
    assert "Page 1 says hello." in result.result_data["pages"][0]["text"]
    assert "Object report" in str(result.result_data["metadata"])


async def test_a_missing_object_or_a_non_store_reference_is_a_typed_error(lake: Lake) -> None:
    missing = await lake.client.execute_operation(
        "files", {"operation": "ingest", "data": {"object": {"service_name": "lake", "key": "nope.csv"}}}
    )
    not_a_store = await lake.client.execute_operation(
        "files", {"operation": "ingest", "data": {"object": {"service_name": "warehouse", "key": "x.csv"}}}
    )

    assert missing.error is not None and missing.error.category == "permanent"
    assert not_a_store.error is not None and not_a_store.error.code == "INVALID_CONFIG"


async def test_50_mb_csv_streams_from_s3_into_postgresql_with_bounded_worker_memory(
    lake: Lake, s3: S3Server, sink_fleet: tuple[Vhost, FleetProcess]
) -> None:
    _, worker = sink_fleet
    body = big_csv(BIG_ROWS)
    assert len(body) > 50_000_000
    put(s3, lake.bucket, "big.csv", body)
    del body
    pg = await asyncpg.connect(PG_DSN)
    await pg.execute(f"CREATE TABLE {TABLE} (id int, name text, amount numeric, created date)")
    updates: list[dict[str, Any]] = []
    peak_before = vm_kib(worker.proc.pid, "VmHWM")
    try:
        result = await lake.client.execute_operation(
            "files",
            {
                "operation": "ingest",
                "data": {"object": {"service_name": "lake", "key": "big.csv"}},
                "parameters": {
                    "sink": {"service_name": "warehouse", "table_name": TABLE, "batch_size": 5000}
                },
                "timeout": 900,
            },
            on_progress=updates.append,
        )
        peak_after = vm_kib(worker.proc.pid, "VmHWM")
        stored = await pg.fetchrow(
            f"SELECT count(*) AS n, max(id) AS top, sum(amount) > 0 AS summed FROM {TABLE}"
        )
    finally:
        await pg.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await pg.close()

    growth_mib = (peak_after - peak_before) / 1024
    print(
        f"\nworker peak RSS: {peak_before / 1024:.1f} MiB before, {peak_after / 1024:.1f} MiB after "
        f"(+{growth_mib:.1f} MiB) for a {BIG_ROWS}-row file"
    )
    assert result.status == "success", result.error
    assert (result.records_processed, result.records_affected) == (BIG_ROWS, BIG_ROWS)
    assert result.result_data["batches"] == BIG_ROWS // 5000
    assert stored is not None
    assert (stored["n"], stored["top"], stored["summed"]) == (BIG_ROWS, BIG_ROWS - 1, True)
    assert updates and updates[-1]["records_done"] <= BIG_ROWS
    assert [u["records_done"] for u in updates] == sorted(u["records_done"] for u in updates)
    # Streaming: the worker never held the 50 MB file (as bytes and text it would need over 100 MB).
    assert growth_mib < 50, f"worker peak memory grew by {growth_mib:.1f} MiB"


@pytest.mark.parametrize(
    ("content", "code", "limit"),
    [
        (b'id,comment\n1,"never closed\n' + b"x" * 200_000 + b"\n2,ok\n", "LIMIT_EXCEEDED", "max_field_size"),
        (b",".join([b"c"] * 1_000_000) + b"\n", "LIMIT_EXCEEDED", "max_columns"),
        (b'id,comment\n1,"never closed\n2,ok\n', "INVALID_DATA", None),
    ],
)
async def test_hostile_files_are_refused_by_their_limits(
    lake: Lake, s3: S3Server, content: bytes, code: str, limit: str | None
) -> None:
    key = f"hostile-{code}-{limit}.csv"
    put(s3, lake.bucket, key, content)
    ref = {"object": {"service_name": "lake", "key": key}}
    sink = {"sink": {"service_name": "warehouse", "table_name": "never_written"}}

    parsed = await lake.client.execute_operation("files", {"operation": "ingest", "data": ref})
    streamed = await lake.client.execute_operation(
        "files", {"operation": "ingest", "data": ref, "parameters": sink}
    )

    for result in (parsed, streamed):
        assert result.error is not None, result.result_data
        assert result.error.code == code
        if limit is not None:
            assert limit in result.error.message
