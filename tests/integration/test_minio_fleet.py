"""The MinIO connector through the fleet: real dispatcher and worker processes, moto's S3 on loopback.

Every operation runs at least once as a caller would run it (AMQP RPC through `FleetClient`); the worker
subprocess reaches the moto server this test process started.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support.s3 import S3Server, moto_server

pytestmark = pytest.mark.integration

SERVICE = "fleet_lake"
PREFIX = "fleet/"
CANARY_SECRET = "minio-secret-canary-93c1"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> Iterator[str]:
    name = s3.new_bucket(create=False)  # the fleet creates it
    yield name
    s3.drop_bucket(name)


@pytest.fixture(scope="module")
async def created(client: FleetClient, s3: S3Server, bucket: str) -> dict[str, Any]:
    body = {
        "service_type": "minio",
        "service_name": SERVICE,
        "connection_timeout": 5,
        "retry_attempts": 1,
        "custom_config": {**s3.custom_config(bucket, prefix=PREFIX), "secret_key": CANARY_SECRET},
    }
    connector = await client.create_connector(body)
    return connector.created.model_dump(mode="json")


async def run(client: FleetClient, operation: str, **request: Any) -> OperationResult:
    return await client.execute_operation(SERVICE, {"operation": operation, **request}, timeout=20)


async def ok(client: FleetClient, operation: str, **request: Any) -> Any:
    result = await run(client, operation, **request)
    assert result.status == "success", result.error
    return result.result_data


async def test_create_reports_the_missing_bucket_until_the_fleet_creates_it(
    client: FleetClient, created: dict[str, Any], bucket: str
) -> None:
    info = created["connector_info"]
    made = await ok(client, "create_bucket")
    tested = await client.test_connection(SERVICE)

    assert info["service_type"] == "minio"
    assert info["connection_status"] == "failed"
    assert info["test_error"]["category"] == "configuration"
    assert made == {"bucket": bucket, "created": True}
    assert tested.status == "success", tested.error


async def test_every_object_operation_through_the_fleet(
    client: FleetClient, created: dict[str, Any], s3: S3Server, bucket: str
) -> None:
    await ok(client, "create_bucket")
    put = await ok(
        client,
        "put_object",
        parameters={"key": "in/hello.txt", "metadata": {"source": "fleet"}},
        data={"text": "hello fleet"},
    )
    await ok(client, "put_object", parameters={"key": "in/doc.json"}, data={"json": {"n": 1}})
    await ok(client, "put_object", parameters={"key": "in/raw.bin"}, data={"base64": "AAEC"})
    got = await ok(client, "get_object", parameters={"key": "in/hello.txt", "encoding": "text"})
    ranged = await ok(client, "get_object", parameters={"key": "in/hello.txt", "offset": 6, "length": 5})
    stat = await ok(client, "stat_object", parameters={"key": "in/hello.txt"})
    copied = await ok(
        client, "copy_object", parameters={"source_key": "in/hello.txt", "key": "out/hello.txt"}
    )
    first = await run(client, "list_objects", parameters={"prefix": "in/", "page_size": 2})
    rest = await run(
        client, "list_objects", parameters={"prefix": "in/", "page_size": 2}, page_token=first.next_page_token
    )
    buckets = await ok(client, "list_buckets")

    assert (put["key"], got["data"]) == ("in/hello.txt", "hello fleet")
    assert base64.b64decode(ranged["data"]) == b"fleet"
    assert stat["metadata"] == {"source": "fleet"} and stat["size"] == 11
    assert copied["key"] == "out/hello.txt"
    assert [o["key"] for o in first.result_data["objects"] + rest.result_data["objects"]] == [
        "in/doc.json",
        "in/hello.txt",
        "in/raw.bin",
    ]
    assert rest.next_page_token is None
    assert bucket in [b["name"] for b in buckets["buckets"]]
    assert s3.admin().stat_object(bucket, PREFIX + "out/hello.txt").size == 11

    removed = await ok(client, "delete_object", parameters={"key": "out/hello.txt"})
    many = await run(client, "delete_objects", parameters={"keys": ["in/doc.json", "in/raw.bin"]})
    left = await ok(client, "list_objects", parameters={"recursive": True})

    assert removed["deleted"] is True
    assert (many.records_affected, many.result_data["errors"]) == (2, [])
    assert [o["key"] for o in left["objects"]] == ["in/hello.txt"]


async def test_presigned_urls_from_the_fleet_work_for_a_plain_http_client(
    client: FleetClient, created: dict[str, Any]
) -> None:
    await ok(client, "create_bucket")
    upload = await ok(client, "presigned_put", parameters={"key": "drop/file.txt", "expires": 300})
    async with httpx.AsyncClient() as http:
        put = await http.put(upload["url"], content=b"from outside")
        download = await ok(client, "presigned_get", parameters={"key": "drop/file.txt"})
        got = await http.get(download["url"])

    assert put.status_code == 200
    assert (got.status_code, got.content) == (200, b"from outside")


async def test_ingest_reads_a_large_csv_where_it_lives(
    client: FleetClient, created: dict[str, Any], s3: S3Server, bucket: str
) -> None:
    await ok(client, "create_bucket")
    rows = 40_000
    content = ("id,city,temp\n" + "".join(f"{i},city-{i % 50},{i % 40}.5\n" for i in range(rows))).encode()
    s3.admin().put_object(bucket, PREFIX + "big/weather.csv", io.BytesIO(content), len(content))

    result = await run(client, "ingest", parameters={"key": "big/weather.csv", "page_size": 3})

    assert result.status == "success", result.error
    assert result.result_data["total_rows"] == rows
    assert result.result_data["records"][0] == {"id": 0, "city": "city-0", "temp": 0.5}
    assert result.result_data["source"]["size"] == len(content) > 700_000
    assert len(json.dumps(result.model_dump(mode="json"))) < 5_000  # the file stayed in the store
    assert result.next_page_token is not None


async def test_refusals_come_back_as_typed_failed_replies(
    client: FleetClient, created: dict[str, Any]
) -> None:
    await ok(client, "create_bucket")
    hostile = await run(client, "delete_object", parameters={"key": "../../etc/passwd"})
    missing = await run(client, "get_object", parameters={"key": "never/was.txt"})
    await ok(client, "put_object", parameters={"key": "notes.txt"}, data={"text": "not a PDF at all"})
    not_a_pdf = await run(client, "ingest", parameters={"key": "notes.txt", "format": "pdf"})

    assert hostile.error is not None
    assert (hostile.error.category, hostile.error.code, hostile.error.retryable) == (
        "permanent",
        "INVALID_IDENTIFIER",
        False,
    )
    assert missing.error is not None and (missing.error.category, missing.error.code) == (
        "permanent",
        "NOT_FOUND",
    )
    assert not_a_pdf.error is not None
    assert (not_a_pdf.error.category, not_a_pdf.error.code) == ("permanent", "INVALID_DATA")


async def test_the_secret_key_never_comes_back(client: FleetClient, created: dict[str, Any]) -> None:
    fetched = await client.get_connector(SERVICE)
    listed = await client.list_connectors("minio")

    assert CANARY_SECRET not in fetched.model_dump_json()
    assert CANARY_SECRET not in json.dumps([c.model_dump(mode="json") for c in listed])
    assert fetched.config["custom_config"]["secret_key"] == "**********"
