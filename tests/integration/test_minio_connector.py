"""`MinIOStorageConnector` through the real minio SDK against moto's S3 server (and a real MinIO when
SCF_TEST_MINIO_ENDPOINT is set): every operation, multipart, ranges, caps, paging, key safety, ingest.

Refusals a permissive server cannot produce come from moto enforcing IAM (a separate process) and from
a local HTTP server that answers like a failing store. Every test works in its own bucket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.server
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from scf.connectors.minio import MinIOStorageConnector
from scf.connectors.registry import connector_class
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode
from scf.schemas.operation import OperationOutcome, OperationRequest
from tests.support.pdfs import text_pdf
from tests.support.s3 import Credentials, IamMoto, S3Server, iam_moto_server, minio_from_env, moto_server

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
PREFIX = "tenant-a/"


@pytest.fixture(scope="module", params=["moto", "minio"])
def s3(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    if request.param == "moto":
        with moto_server() as server:
            yield server
        return
    real = minio_from_env()
    if real is None:
        pytest.skip("SCF_TEST_MINIO_ENDPOINT is not set: the real-MinIO run of this suite is skipped")
    yield real


@pytest.fixture(scope="module")
def moto(s3: S3Server) -> S3Server:
    """The suite's server when it is moto (for the tests that need moto's behaviour)."""
    if s3.kind != "moto":
        pytest.skip("needs moto")
    return s3


@pytest.fixture
def bucket(s3: S3Server) -> Iterator[str]:
    name = s3.new_bucket()
    yield name
    s3.drop_bucket(name)


@dataclass
class Lake:
    """A connector on one bucket under PREFIX, with shortcuts that run operations through its contract."""

    connector: MinIOStorageConnector
    s3: S3Server
    bucket: str

    async def run(self, operation: str, **request: Any) -> OperationOutcome:
        return await self.connector.execute(OperationRequest(operation=operation, **request))

    async def data(self, operation: str, **request: Any) -> Any:
        return (await self.run(operation, **request)).result_data

    async def fails(self, operation: str, **request: Any) -> ConnectorError:
        with pytest.raises(ConnectorError) as caught:
            await self.run(operation, **request)
        return caught.value

    async def put(self, key: str, text: str, **parameters: Any) -> Any:
        return await self.data("put_object", parameters={"key": key, **parameters}, data={"text": text})

    def seed(self, key: str, content: bytes) -> None:
        """Write an object under the prefix with the admin client (bypassing the connector's limits)."""
        self.s3.admin().put_object(self.bucket, PREFIX + key, io.BytesIO(content), len(content))

    def snapshot(self) -> dict[str, str]:
        """Every object of the bucket (full names) with its etag, seen by the admin client."""
        client = self.s3.admin()
        return {
            o.object_name: o.etag or ""
            for o in client.list_objects(self.bucket, recursive=True)
            if o.object_name is not None
        }


def build(s3: S3Server, bucket: str, **custom: Any) -> MinIOStorageConnector:
    connection = s3.connection("lake", bucket, **{"prefix": PREFIX, **custom})
    connector = connector_class(connection.service_type)(connection)
    assert isinstance(connector, MinIOStorageConnector)
    return connector


@contextlib.asynccontextmanager
async def opened(s3: S3Server, bucket: str, **custom: Any) -> AsyncIterator[Lake]:
    connector = build(s3, bucket, **custom)
    try:
        yield Lake(connector, s3, bucket)
    finally:
        await connector.close()


@pytest.fixture
async def lake(s3: S3Server, bucket: str) -> AsyncIterator[Lake]:
    async with opened(s3, bucket) as made:
        yield made


# --- buckets and checks ---------------------------------------------------------------------------


async def test_a_missing_bucket_fails_check_as_configuration_until_create_bucket(s3: S3Server) -> None:
    bucket = s3.new_bucket(create=False)
    try:
        async with opened(s3, bucket) as lake:
            before = await lake.connector.check()
            first = await lake.data("create_bucket")
            again = await lake.data("create_bucket")
            after = await lake.connector.check()
    finally:
        s3.drop_bucket(bucket)

    assert before.status == "failed"
    assert before.error is not None and before.error.category == "configuration"
    assert (first, again) == ({"bucket": bucket, "created": True}, {"bucket": bucket, "created": False})
    assert after.status == "success", after.error


async def test_list_buckets_shows_the_bucket(lake: Lake) -> None:
    outcome = await lake.run("list_buckets")

    names = [b["name"] for b in outcome.result_data["buckets"]]
    assert lake.bucket in names
    assert outcome.records_processed == len(names)


async def test_an_object_operation_on_a_missing_bucket_is_a_configuration_error(s3: S3Server) -> None:
    async with opened(s3, s3.new_bucket(create=False)) as lake:
        error = await lake.fails("stat_object", parameters={"key": "x"})

    assert (error.category, error.code) == (ErrorCategory.CONFIGURATION, ErrorCode.INVALID_CONFIG)


async def test_a_connector_without_a_bucket_lists_buckets_and_refuses_the_rest(moto: S3Server) -> None:
    host, port = moto.endpoint.split(":")
    # what discovery registers for a store answering on MINIO_PORT: host and port, nothing else
    connection = ServiceConnection.model_validate(
        {"service_type": "minio", "service_name": "discovered-minio-9000", "host": host, "port": int(port)}
    )
    connector = MinIOStorageConnector(connection)
    try:
        check = await connector.check()
        listed = await connector.execute(OperationRequest(operation="list_buckets"))
        with pytest.raises(ConnectorError) as caught:
            await connector.execute(OperationRequest(operation="stat_object", parameters={"key": "k"}))
    finally:
        await connector.close()

    assert check.status == "success", check.error
    assert isinstance(listed.result_data["buckets"], list)
    assert caught.value.category is ErrorCategory.CONFIGURATION
    assert "bucket_name" in caught.value.message


# --- put, get, stat -------------------------------------------------------------------------------


async def test_text_round_trips_with_content_type_and_metadata(lake: Lake) -> None:
    put = await lake.put(
        "notes/hello.txt", "héllo wörld", content_type="text/markdown", metadata={"Owner": "ada"}
    )
    got = await lake.data("get_object", parameters={"key": "notes/hello.txt", "encoding": "text"})
    stat = await lake.data("stat_object", parameters={"key": "notes/hello.txt"})

    assert put["key"] == "notes/hello.txt" and put["size"] == len("héllo wörld".encode())
    assert got["data"] == "héllo wörld"
    assert (got["content_type"], got["metadata"]) == ("text/markdown", {"owner": "ada"})
    assert stat["size"] == put["size"] and stat["etag"] == put["etag"] == got["etag"]
    assert stat["metadata"] == {"owner": "ada"}
    assert stat["last_modified"].endswith("+00:00")
    assert lake.s3.admin().stat_object(lake.bucket, PREFIX + "notes/hello.txt").size == put["size"]


async def test_binary_round_trips_exactly_through_base64(lake: Lake) -> None:
    raw = bytes(range(256)) * 40

    await lake.run(
        "put_object", parameters={"key": "blob.bin"}, data={"base64": base64.b64encode(raw).decode()}
    )
    got = await lake.data("get_object", parameters={"key": "blob.bin"})

    assert got["encoding"] == "base64"
    assert base64.b64decode(got["data"]) == raw
    assert got["content_type"] == "application/octet-stream"


async def test_json_is_stored_as_a_json_document(lake: Lake) -> None:
    await lake.run("put_object", parameters={"key": "doc.json"}, data={"json": {"a": [1, 2], "b": "ü"}})
    got = await lake.data("get_object", parameters={"key": "doc.json", "encoding": "text"})

    assert json.loads(got["data"]) == {"a": [1, 2], "b": "ü"}
    assert got["content_type"] == "application/json"


async def test_a_body_over_part_size_is_uploaded_in_parts(s3: S3Server, bucket: str) -> None:
    body = (hashlib.sha256(b"seed").digest() * (11 * MIB // 32 + 1))[: 11 * MIB]
    async with opened(s3, bucket, part_size=5 * MIB, max_object_bytes=16 * MIB) as lake:
        put = await lake.run(
            "put_object", parameters={"key": "big.bin"}, data={"base64": base64.b64encode(body).decode()}
        )
        whole = await lake.data("get_object", parameters={"key": "big.bin"})
        seam = await lake.data(
            "get_object", parameters={"key": "big.bin", "offset": 5 * MIB - 3, "length": 6}
        )

    assert put.result_data["multipart"] is True
    assert put.result_data["etag"].endswith("-3")  # S3's multipart etag: digest of parts, '-' part count
    assert base64.b64decode(whole["data"]) == body
    assert base64.b64decode(seam["data"]) == body[5 * MIB - 3 : 5 * MIB + 3]


async def test_a_body_at_part_size_is_one_put(s3: S3Server, bucket: str) -> None:
    async with opened(s3, bucket, part_size=5 * MIB, max_object_bytes=8 * MIB) as lake:
        put = await lake.data(
            "put_object",
            parameters={"key": "edge.bin"},
            data={"base64": base64.b64encode(b"x" * 5 * MIB).decode()},
        )

    assert put["multipart"] is False
    assert "-" not in put["etag"]


async def test_byte_ranges_and_open_ranges_page_through_an_object(s3: S3Server, bucket: str) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(250))
    async with opened(s3, bucket, max_object_bytes=100) as lake:
        lake.seed("abc.txt", text.encode())
        middle = await lake.data(
            "get_object", parameters={"key": "abc.txt", "offset": 10, "length": 5, "encoding": "text"}
        )
        pieces, offset = [], 0
        while offset is not None:
            got = await lake.data(
                "get_object", parameters={"key": "abc.txt", "offset": offset, "encoding": "text"}
            )
            pieces.append(got["data"])
            offset = got["next_offset"]

    assert (middle["data"], middle["size"], middle["truncated"]) == (text[10:15], 250, True)
    assert [len(p) for p in pieces] == [100, 100, 50]
    assert "".join(pieces) == text


async def test_a_whole_object_over_the_cap_is_refused_naming_the_cap(s3: S3Server, bucket: str) -> None:
    async with opened(s3, bucket, max_object_bytes=100) as lake:
        lake.seed("big.txt", b"x" * 101)
        error = await lake.fails("get_object", parameters={"key": "big.txt"})
        ranged = await lake.fails("get_object", parameters={"key": "big.txt", "offset": 0, "length": 101})
        fits = await lake.data("get_object", parameters={"key": "big.txt", "offset": 1, "length": 100})

    assert (error.category, error.code) == (ErrorCategory.PERMANENT, ErrorCode.LIMIT_EXCEEDED)
    assert "max_object_bytes (100)" in error.message and "range" in error.message
    assert ranged.code == ErrorCode.LIMIT_EXCEEDED
    assert fits["length"] == 100


async def test_a_range_past_the_end_is_permanent(lake: Lake) -> None:
    await lake.put("short.txt", "abc")

    error = await lake.fails("get_object", parameters={"key": "short.txt", "offset": 10, "length": 2})

    assert error.category is ErrorCategory.PERMANENT
    assert not error.retryable


async def test_non_utf8_bytes_are_refused_as_text_but_served_as_base64(lake: Lake) -> None:
    await lake.run(
        "put_object", parameters={"key": "latin1.txt"}, data={"base64": base64.b64encode(b"caf\xe9").decode()}
    )

    error = await lake.fails("get_object", parameters={"key": "latin1.txt", "encoding": "text"})
    got = await lake.data("get_object", parameters={"key": "latin1.txt"})

    assert error.code == ErrorCode.INVALID_DATA
    assert base64.b64decode(got["data"]) == b"caf\xe9"


async def test_a_missing_object_is_not_found(lake: Lake) -> None:
    for operation in ("get_object", "stat_object"):
        error = await lake.fails(operation, parameters={"key": "nope.txt"})
        assert (error.category, error.code) == (ErrorCategory.PERMANENT, ErrorCode.NOT_FOUND)


# --- listing --------------------------------------------------------------------------------------


async def test_a_recursive_listing_pages_through_every_key_once_in_order(lake: Lake) -> None:
    keys = sorted(f"logs/{day:02}/{n}.log" for day in range(1, 6) for n in range(5))
    await asyncio.gather(*(lake.put(key, key) for key in keys))

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        outcome = await lake.run(
            "list_objects",
            parameters={"prefix": "logs/", "recursive": True, "page_size": 10},
            page_token=token,
        )
        seen += [o["key"] for o in outcome.result_data["objects"]]
        pages += 1
        token = outcome.next_page_token
        if token is None:
            break

    assert seen == keys
    assert pages == 3


async def test_a_folder_listing_shows_folders_in_key_order_across_pages(lake: Lake) -> None:
    for key in ("a.txt", "b/1", "b/2", "b/3", "c.txt", "d/e/1", "e.txt"):
        await lake.put(key, key)

    entries: list[tuple[str, bool]] = []
    token: str | None = None
    for _ in range(10):
        outcome = await lake.run("list_objects", parameters={"page_size": 1}, page_token=token)
        entries += [(o["key"], o["is_dir"]) for o in outcome.result_data["objects"]]
        token = outcome.next_page_token
        if token is None:
            break

    assert entries == [("a.txt", False), ("b/", True), ("c.txt", False), ("d/", True), ("e.txt", False)]


async def test_a_folders_own_marker_object_is_not_listed_in_it(lake: Lake) -> None:
    lake.seed("docs/", b"")  # what consoles create for an empty folder
    await lake.put("docs/readme.md", "#")

    listed = await lake.data("list_objects", parameters={"prefix": "docs/"})
    root = await lake.data("list_objects")

    assert [o["key"] for o in listed["objects"]] == ["docs/readme.md"]
    assert [(o["key"], o["is_dir"]) for o in root["objects"]] == [("docs/", True)]


async def test_a_recursive_page_ending_on_a_folder_marker_goes_on_into_the_folder(lake: Lake) -> None:
    lake.seed("docs/", b"")
    for key in ("docs/a.md", "docs/b.md"):
        await lake.put(key, key)

    first = await lake.run("list_objects", parameters={"recursive": True, "page_size": 1})
    rest = await lake.run(
        "list_objects", parameters={"recursive": True, "page_size": 5}, page_token=first.next_page_token
    )

    assert [o["key"] for o in first.result_data["objects"]] == ["docs/"]
    assert [o["key"] for o in rest.result_data["objects"]] == ["docs/a.md", "docs/b.md"]


async def test_a_page_token_only_continues_its_own_listing(lake: Lake) -> None:
    for key in ("x/1", "x/2", "y/1"):
        await lake.put(key, key)
    first = await lake.run("list_objects", parameters={"prefix": "x/", "recursive": True, "page_size": 1})
    assert first.next_page_token is not None

    error = await lake.fails(
        "list_objects",
        parameters={"prefix": "y/", "recursive": True, "page_size": 1},
        page_token=first.next_page_token,
    )
    misuse = await lake.fails("stat_object", parameters={"key": "x/1"}, page_token=first.next_page_token)

    assert error.code == ErrorCode.INVALID_REQUEST
    assert misuse.code == ErrorCode.INVALID_REQUEST


# --- copy, delete, presigned ----------------------------------------------------------------------


async def test_copy_keeps_or_replaces_metadata(lake: Lake) -> None:
    await lake.put("src.txt", "payload", metadata={"stage": "raw"})

    kept = await lake.data("copy_object", parameters={"source_key": "src.txt", "key": "copies/kept.txt"})
    await lake.run(
        "copy_object",
        parameters={
            "source_key": "src.txt",
            "key": "copies/new.txt",
            "metadata": {"stage": "clean"},
            "content_type": "text/csv",
        },
    )
    kept_stat = await lake.data("stat_object", parameters={"key": "copies/kept.txt"})
    new_stat = await lake.data("stat_object", parameters={"key": "copies/new.txt"})
    body = await lake.data("get_object", parameters={"key": "copies/new.txt", "encoding": "text"})

    assert (kept["key"], kept["source_key"]) == ("copies/kept.txt", "src.txt")
    assert kept_stat["metadata"] == {"stage": "raw"}
    assert (new_stat["metadata"], new_stat["content_type"]) == ({"stage": "clean"}, "text/csv")
    assert body["data"] == "payload"


async def test_delete_one_and_many(lake: Lake) -> None:
    for key in ("d/1", "d/2", "d/3", "keep"):
        await lake.put(key, key)

    one = await lake.run("delete_object", parameters={"key": "d/1"})
    again = await lake.run("delete_object", parameters={"key": "d/1"})  # a retry finds nothing: still fine
    many = await lake.run("delete_objects", parameters={"keys": ["d/2", "d/3", "d/2", "never-there"]})

    assert one.records_affected == 1 and again.result_data["deleted"] is True
    assert many.result_data["errors"] == []
    assert sorted(many.result_data["deleted"]) == ["d/2", "d/3", "never-there"]
    assert lake.snapshot().keys() == {PREFIX + "keep"}


async def test_presigned_urls_work_for_whoever_holds_them(lake: Lake) -> None:
    await lake.put("shared/report.csv", "a,b\n1,2\n")

    get = await lake.data("presigned_get", parameters={"key": "shared/report.csv", "expires": 120})
    put = await lake.data("presigned_put", parameters={"key": "shared/upload.bin"})
    async with httpx.AsyncClient() as http:
        fetched = await http.get(get["url"])
        uploaded = await http.put(put["url"], content=b"\x00uploaded by a browser")
    stored = await lake.data("get_object", parameters={"key": "shared/upload.bin"})

    assert (fetched.status_code, fetched.text) == (200, "a,b\n1,2\n")
    assert uploaded.status_code == 200
    assert base64.b64decode(stored["data"]) == b"\x00uploaded by a browser"
    assert (get["method"], get["expires_in"], put["expires_in"]) == ("GET", 120, 3600)
    assert "X-Amz-Expires=120" in get["url"]
    assert f"/{lake.bucket}/{PREFIX}shared/report.csv?" in get["url"]


# --- key safety -----------------------------------------------------------------------------------

HOSTILE_KEYS = [
    "../outside/secret.txt",
    "../tenant-ab/x",
    "/tenant-b/x",
    "a/../../outside/secret.txt",
    "%2e%2e/outside/secret.txt",
    "..\\outside\\secret.txt",
    "a\x00b",
    "x\r\nX-Amz-Acl: public-read",
]


async def test_hostile_keys_are_refused_and_nothing_outside_the_prefix_is_touched(lake: Lake) -> None:
    admin = lake.s3.admin()
    for name in ("outside/secret.txt", "tenant-ab/x", f"{PREFIX}inside.txt"):
        admin.put_object(lake.bucket, name, io.BytesIO(b"original"), 8)
    before = lake.snapshot()

    refusals = []
    for key in HOSTILE_KEYS:
        attempts: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
            ("put_object", {"key": key}, {"text": "overwritten"}),
            ("get_object", {"key": key}, {}),
            ("stat_object", {"key": key}, {}),
            ("delete_object", {"key": key}, {}),
            ("delete_objects", {"keys": ["inside.txt", key]}, {}),
            ("copy_object", {"source_key": key, "key": "stolen.txt"}, {}),
            ("copy_object", {"source_key": "inside.txt", "key": key}, {}),
            ("presigned_get", {"key": key}, {}),
            ("presigned_put", {"key": key}, {}),
            ("list_objects", {"prefix": key}, {}),
            ("ingest", {"key": key, "format": "csv"}, {}),
        ]
        for operation, parameters, data in attempts:
            refusals.append(await lake.fails(operation, parameters=parameters, data=data))

    assert {(e.category, e.code) for e in refusals} == {
        (ErrorCategory.PERMANENT, ErrorCode.INVALID_IDENTIFIER)
    }
    assert lake.snapshot() == before


async def test_listings_never_show_what_lies_beside_the_prefix(lake: Lake) -> None:
    admin = lake.s3.admin()
    for name in ("tenant-ab/sibling.txt", "tenant-a.txt", "other/x"):
        admin.put_object(lake.bucket, name, io.BytesIO(b"x"), 1)
    await lake.put("mine.txt", "x")

    listed = await lake.data("list_objects", parameters={"recursive": True})

    assert [o["key"] for o in listed["objects"]] == ["mine.txt"]
    assert listed["prefix"] == ""


# --- ingest ---------------------------------------------------------------------------------------


async def test_ingest_parses_a_csv_object_in_pages_without_it_travelling_in_messages(lake: Lake) -> None:
    rows = "".join(f"{i},name {i},{i * 1.5}\n" for i in range(1, 6))
    await lake.put("exports/people.csv", "id,name,score\n" + rows)

    first = await lake.run("ingest", parameters={"key": "exports/people.csv", "page_size": 2})
    second = await lake.run(
        "ingest", parameters={"key": "exports/people.csv", "page_size": 2}, page_token=first.next_page_token
    )

    assert first.result_data["records"] == [
        {"id": 1, "name": "name 1", "score": 1.5},
        {"id": 2, "name": "name 2", "score": 3.0},
    ]
    assert first.result_data["total_rows"] == 5
    assert first.result_data["source"]["key"] == "exports/people.csv"
    assert first.result_data["source"]["size"] == len("id,name,score\n" + rows)
    assert [r["id"] for r in second.result_data["records"]] == [3, 4]


async def test_ingest_refuses_a_page_token_once_the_object_changed(lake: Lake) -> None:
    await lake.put("t.csv", "a\n1\n2\n3\n")
    first = await lake.run("ingest", parameters={"key": "t.csv", "page_size": 1})
    await lake.put("t.csv", "a\n9\n8\n7\n")

    error = await lake.fails(
        "ingest", parameters={"key": "t.csv", "page_size": 1}, page_token=first.next_page_token
    )

    assert error.category is ErrorCategory.PERMANENT


async def test_ingest_honours_its_own_size_limit_and_the_parsers_options(s3: S3Server, bucket: str) -> None:
    async with opened(s3, bucket, max_ingest_bytes=64) as lake:
        await lake.put("semi.txt", "a;b\n1;2\n")
        await lake.put("big.csv", "a\n" + "1\n" * 40)
        parsed = await lake.data("ingest", parameters={"key": "semi.txt", "format": "csv", "delimiter": ";"})
        error = await lake.fails("ingest", parameters={"key": "big.csv"})
        unknown = await lake.fails(
            "ingest", parameters={"key": "semi.txt", "format": "csv", "delimitter": ";"}
        )

    assert parsed["records"] == [{"a": 1, "b": 2}]
    assert error.code == ErrorCode.LIMIT_EXCEEDED and "max_ingest_bytes (64)" in error.message
    assert unknown.code == ErrorCode.INVALID_REQUEST


async def test_ingest_of_a_pdf_object_runs_the_pdf_parser(lake: Lake) -> None:
    lake.seed("docs/report.pdf", text_pdf(pages=2))

    parsed = await lake.data("ingest", parameters={"key": "docs/report.pdf", "pages": [2]})

    assert parsed["page_count"] == 2
    assert [p["page"] for p in parsed["pages"]] == [2]
    assert parsed["source"]["key"] == "docs/report.pdf"


# --- threads and the event loop -------------------------------------------------------------------


async def test_sdk_calls_run_in_the_bounded_pool_and_never_block_the_loop(s3: S3Server, bucket: str) -> None:
    body = base64.b64encode(b"z" * (6 * MIB)).decode()
    async with opened(s3, bucket, thread_pool_size=2, part_size=5 * MIB, max_object_bytes=8 * MIB) as lake:
        gaps: list[float] = []
        seen_threads: set[str] = set()
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
                seen_threads.update(t.name for t in threading.enumerate() if t.name.startswith("scf-s3-lake"))

        tick = asyncio.create_task(ticker())
        results = await asyncio.gather(
            *(lake.run("put_object", parameters={"key": f"p/{i}"}, data={"base64": body}) for i in range(6))
        )
        done.set()
        await tick
        stats = lake.connector.pool_stats()

    assert all(r.records_affected == 1 for r in results)
    assert 1 <= len(seen_threads) <= 2
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.3f}s"
    assert (stats.size, stats.in_use) == (2, 0)


async def test_close_stops_the_threads_and_use_opens_again(lake: Lake) -> None:
    await lake.put("a.txt", "a")
    await lake.connector.close()
    await lake.connector.close()

    assert not lake.connector.is_open
    assert lake.connector.pool_stats().size == 0
    assert (await lake.data("get_object", parameters={"key": "a.txt", "encoding": "text"}))["data"] == "a"


# --- refusals only moto with IAM can give ---------------------------------------------------------


@pytest.fixture(scope="module")
def iam_s3(moto: S3Server) -> Iterator[IamMoto]:
    with iam_moto_server() as server:
        yield server


def iam_connection(
    iam_s3: IamMoto, bucket: str, credentials: Credentials, **custom: Any
) -> ServiceConnection:
    config: dict[str, Any] = {"access_key": credentials.access_key, "secret_key": credentials.secret_key}
    if credentials.session_token is not None:
        config["session_token"] = credentials.session_token
    return iam_s3.server.connection("iam_lake", bucket, **{**config, **custom})


@pytest.fixture
def iam_bucket(iam_s3: IamMoto) -> Iterator[str]:
    name = iam_s3.server.new_bucket()
    yield name
    iam_s3.server.drop_bucket(name)


async def test_a_read_only_key_reads_but_writing_is_a_permission_error(
    iam_s3: IamMoto, iam_bucket: str
) -> None:
    connector = MinIOStorageConnector(iam_connection(iam_s3, iam_bucket, iam_s3.reader))
    try:
        check = await connector.check()
        listed = await connector.execute(OperationRequest(operation="list_objects"))
        with pytest.raises(ConnectorError) as caught:
            await connector.execute(
                OperationRequest(operation="put_object", parameters={"key": "k"}, data={"text": "x"})
            )
    finally:
        await connector.close()

    assert check.status == "success", check.error
    assert listed.result_data["objects"] == []
    assert (caught.value.category, caught.value.code) == (ErrorCategory.SECURITY, ErrorCode.PERMISSION_DENIED)
    assert caught.value.to_info().message == "access denied"


@pytest.mark.parametrize("refused", ["unknown key", "wrong secret"])
async def test_refused_credentials_fail_open_and_check_as_authentication(
    iam_s3: IamMoto, iam_bucket: str, refused: str
) -> None:
    known_key = iam_s3.server.credentials.access_key
    credentials = Credentials(
        "AKIANEVERISSUED0000" if refused == "unknown key" else known_key, "secret-canary-22"
    )
    connector = MinIOStorageConnector(iam_connection(iam_s3, iam_bucket, credentials))
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
        check = await connector.check()
    finally:
        await connector.close()

    assert (caught.value.category, caught.value.code) == (
        ErrorCategory.SECURITY,
        ErrorCode.AUTHENTICATION_FAILED,
    )
    assert "secret-canary-22" not in caught.value.to_info().model_dump_json()
    assert check.test_results == {
        "connection_test": "passed",
        "authentication_test": "failed",
        "permissions_test": "skipped",
    }


async def test_temporary_credentials_work_with_their_session_token_only(
    iam_s3: IamMoto, iam_bucket: str
) -> None:
    good = MinIOStorageConnector(iam_connection(iam_s3, iam_bucket, iam_s3.session))
    forged = Credentials(iam_s3.session.access_key, iam_s3.session.secret_key, "not-the-session-token")
    bad = MinIOStorageConnector(iam_connection(iam_s3, iam_bucket, forged))
    try:
        await good.execute(
            OperationRequest(operation="put_object", parameters={"key": "k"}, data={"text": "sts"})
        )
        got = await good.execute(
            OperationRequest(operation="get_object", parameters={"key": "k", "encoding": "text"})
        )
        with pytest.raises(ConnectorError) as caught:
            await bad.open()
    finally:
        await good.close()
        await bad.close()

    assert got.result_data["data"] == "sts"
    assert caught.value.category is ErrorCategory.SECURITY


# --- a store that fails: a local HTTP server answering like one ------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/xml"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


def s3_error_xml(code: str) -> bytes:
    return f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()


@contextlib.contextmanager
def failing_store(answer: Answer) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            time.sleep(answer.delay)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answer", "category", "code", "retry_after"),
    [
        (
            Answer(503, s3_error_xml("SlowDown"), headers=(("Retry-After", "3"),)),
            ErrorCategory.RESOURCE,
            ErrorCode.TOO_MANY_CONNECTIONS,
            3.0,
        ),
        (
            Answer(503, s3_error_xml("ServiceUnavailable")),
            ErrorCategory.TRANSIENT,
            ErrorCode.CONNECTION_FAILED,
            None,
        ),
        (
            Answer(500, s3_error_xml("InternalError")),
            ErrorCategory.TRANSIENT,
            ErrorCode.CONNECTION_FAILED,
            None,
        ),
        (
            Answer(502, b"<html>Bad Gateway</html>", "text/html"),
            ErrorCategory.TRANSIENT,
            ErrorCode.CONNECTION_FAILED,
            None,
        ),
        (
            Answer(400, s3_error_xml("ExpiredToken")),
            ErrorCategory.SECURITY,
            ErrorCode.AUTHENTICATION_FAILED,
            None,
        ),
        (Answer(200, s3_error_xml("ok"), delay=3.0), ErrorCategory.TRANSIENT, ErrorCode.TIMEOUT, None),
    ],
    ids=["slow down", "unavailable", "internal error", "html from a proxy", "expired token", "read timeout"],
)
async def test_a_failing_store_is_classified(
    moto: S3Server, answer: Answer, category: ErrorCategory, code: ErrorCode, retry_after: float | None
) -> None:
    with failing_store(answer) as endpoint:
        connector = build(moto, "some-bucket", endpoint=endpoint, read_timeout=0.5)
        try:
            with pytest.raises(ConnectorError) as caught:
                await connector.open()
        finally:
            await connector.close()

    assert (caught.value.category, caught.value.code) == (category, code)
    assert caught.value.retry_after == retry_after


async def test_tls_against_a_plain_http_store_is_a_configuration_error(moto: S3Server, bucket: str) -> None:
    connector = build(moto, bucket, secure=True)
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
    finally:
        await connector.close()

    assert caught.value.category is ErrorCategory.CONFIGURATION


async def test_an_unreachable_store_fails_fast(moto: S3Server) -> None:
    connector = build(moto, "some-bucket", endpoint="127.0.0.1:1")
    started = time.perf_counter()
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
    finally:
        await connector.close()

    assert caught.value.category is ErrorCategory.TRANSIENT
    assert time.perf_counter() - started < 2
