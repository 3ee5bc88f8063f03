"""Put bodies, reply encodings, metadata and content types of the MinIO connector (pure, no network)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from scf.connectors.minio.bodies import (
    MAX_METADATA_BYTES,
    base64_body,
    check_content_type,
    encode_reply,
    json_body,
    metadata_headers,
    text_body,
    user_metadata,
)
from scf.connectors.minio.objects import put_body
from scf.connectors.minio.requests import PutData
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.validation import parse_model as parse


def test_text_is_stored_as_utf8_with_a_text_content_type() -> None:
    body = text_body("héllo", 100)

    assert body.content == "héllo".encode()
    assert body.default_content_type == "text/plain; charset=utf-8"


def test_base64_tolerates_line_breaks_and_keeps_bytes_exact() -> None:
    raw = bytes(range(256))
    wrapped = "\n".join(base64.b64encode(raw).decode()[i : i + 76] for i in range(0, 344, 76))

    body = base64_body(wrapped, 1000)

    assert body.content == raw
    assert body.default_content_type == "application/octet-stream"


@pytest.mark.parametrize("text", ["not base64!", "abc", "YQ=\u00e9"])
def test_bad_base64_is_invalid_data(text: str) -> None:
    with pytest.raises(PermanentError) as caught:
        base64_body(text, 1000)

    assert caught.value.code == ErrorCode.INVALID_DATA


def test_json_is_compact_utf8() -> None:
    body = json_body({"name": "Zoë", "n": [1, 2]}, 100)

    assert body.content == '{"name":"Zoë","n":[1,2]}'.encode()
    assert body.default_content_type == "application/json"


def test_json_that_is_not_json_is_refused() -> None:
    with pytest.raises(PermanentError):
        json_body({"x": float("nan")}, 100)


@pytest.mark.parametrize(
    ("make", "payload"),
    [
        (text_body, "x" * 11),
        (text_body, "é" * 6),  # 6 characters, 12 bytes
        (base64_body, base64.b64encode(b"x" * 11).decode()),
        (base64_body, base64.b64encode(b"x" * 400).decode()),  # refused before decoding
        (json_body, ["a" * 20]),
    ],
)
def test_a_body_over_the_limit_names_the_limit(make: Any, payload: Any) -> None:
    with pytest.raises(PermanentError) as caught:
        make(payload, 10)

    assert caught.value.code == ErrorCode.LIMIT_EXCEEDED
    assert "max_object_bytes (10)" in caught.value.message


@pytest.mark.parametrize(
    "data",
    [{}, {"text": "a", "base64": "YQ=="}, {"text": "a", "json": 1}, {"text": None}, {"blob": "x"}],
)
def test_a_put_needs_exactly_one_body(data: dict[str, Any]) -> None:
    with pytest.raises(PermanentError) as caught:
        parse(PutData, data, "data")

    assert caught.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("data", "content"),
    [({"text": "a,b"}, b"a,b"), ({"base64": "AAE="}, b"\x00\x01"), ({"json": None}, b"null")],
)
def test_each_body_kind_becomes_bytes(data: dict[str, Any], content: bytes) -> None:
    assert put_body(parse(PutData, data, "data"), 100).content == content


def test_replies_are_base64_or_strict_utf8() -> None:
    assert encode_reply(b"\xff\x00", "base64") == "/wA="
    assert encode_reply("ü".encode(), "text") == "ü"
    with pytest.raises(PermanentError) as caught:
        encode_reply(b"ok\xff", "text")
    assert "offset 2" in caught.value.message
    assert "base64" in caught.value.message


def test_metadata_becomes_lower_case_amz_meta_headers_and_comes_back() -> None:
    headers = metadata_headers({"Owner": "ada", "batch_id": "42"})

    assert headers == {"x-amz-meta-owner": "ada", "x-amz-meta-batch_id": "42"}
    response = {"Content-Type": "text/csv", "X-Amz-Meta-Owner": "ada", "x-amz-meta-batch_id": "42"}
    assert user_metadata(response) == {"owner": "ada", "batch_id": "42"}


@pytest.mark.parametrize(
    "metadata",
    [
        {"bad name": "v"},
        {"content-type": "x", "Content-Type": "y"},
        {"x": "line\r\nX-Amz-Acl: public-read"},
        {"x": "tab\there"},
        {"x": " padded"},
        {"x": "naïve"},
        {"": "v"},
        {"n" * 129: "v"},
    ],
)
def test_metadata_that_could_break_headers_is_refused(metadata: dict[str, str]) -> None:
    with pytest.raises(PermanentError) as caught:
        metadata_headers(metadata)

    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_metadata_over_the_s3_limit_is_refused() -> None:
    with pytest.raises(PermanentError) as caught:
        metadata_headers({f"k{i}": "v" * 100 for i in range(MAX_METADATA_BYTES // 100)})

    assert caught.value.code == ErrorCode.LIMIT_EXCEEDED


@pytest.mark.parametrize(
    "value",
    ["text/csv", "text/csv; charset=utf-8", 'multipart/mixed; boundary="a b"', "application/vnd.x+json"],
)
def test_media_types_are_accepted(value: str) -> None:
    assert check_content_type(value) == value


@pytest.mark.parametrize("value", ["text", "text/csv\r\nX-Evil: 1", "text/csv; charset", "a/b/c", "x" * 300])
def test_content_types_that_are_not_media_types_are_refused(value: str) -> None:
    with pytest.raises(PermanentError) as caught:
        check_content_type(value)

    assert caught.value.code == ErrorCode.INVALID_REQUEST
