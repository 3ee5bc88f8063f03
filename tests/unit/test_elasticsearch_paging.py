"""Elasticsearch page tokens: opaque, bound to their search, refused when foreign or tampered with."""

from __future__ import annotations

import base64
import json
import random
import zlib

import pytest

from scf.connectors.elasticsearch.paging import (
    MAX_PAGE_TOKEN_CHARS,
    PageToken,
    decode_page_token,
    encode_page_token,
    search_fingerprint,
)
from scf.schemas.errors import PermanentError
from scf.schemas.operation import OperationRequest

BODY = {"query": {"match": {"title": "fox"}}, "sort": [{"year": "asc"}]}


def test_a_token_round_trips() -> None:
    fingerprint = search_fingerprint("books", BODY)
    token = PageToken("pit-id==", (1990, "fable", 1.5, None, True), fingerprint)

    assert decode_page_token(encode_page_token(token), fingerprint) == token


def test_a_token_is_url_safe_text() -> None:
    text = encode_page_token(PageToken("p" * 300, (1, 2), search_fingerprint("books", BODY)))

    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_fingerprint_ignores_key_order_but_not_content() -> None:
    same = {"sort": [{"year": "asc"}], "query": {"match": {"title": "fox"}}}

    assert search_fingerprint("books", BODY) == search_fingerprint("books", same)
    assert search_fingerprint("books", BODY) != search_fingerprint("films", BODY)
    assert search_fingerprint("books", BODY) != search_fingerprint(
        "books", {**BODY, "sort": [{"year": "desc"}]}
    )


def test_a_token_of_another_search_is_refused() -> None:
    token = encode_page_token(PageToken("pit", (1,), search_fingerprint("books", BODY)))

    with pytest.raises(PermanentError) as caught:
        decode_page_token(token, search_fingerprint("books", {**BODY, "query": {"match_all": {}}}))

    assert caught.value.code == "INVALID_REQUEST"
    assert "different search" in caught.value.message


def _pack(payload: object) -> str:
    return base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a token!",
        base64.urlsafe_b64encode(b"plain bytes").decode(),
        _pack(["a", "list"]),
        _pack({"v": 2, "pit": "p", "after": [1], "fp": "f"}),
        _pack({"v": 1, "pit": "", "after": [1], "fp": "f"}),
        _pack({"v": 1, "pit": "p", "after": [], "fp": "f"}),
        _pack({"v": 1, "pit": "p", "after": [{"nested": 1}], "fp": "f"}),
        _pack({"v": 1, "pit": "p", "after": [1] * 65, "fp": "f"}),
        _pack({"v": 1, "pit": "p", "after": [1], "fp": 7}),
        base64.urlsafe_b64encode(zlib.compress(b"[" * 10 + b" " * 200_000)).decode(),
    ],
)
def test_malformed_tokens_are_invalid_requests(text: str) -> None:
    with pytest.raises(PermanentError) as caught:
        decode_page_token(text, "f")

    assert caught.value.code == "INVALID_REQUEST"


def test_the_token_limit_is_the_request_schemas_limit() -> None:
    schema = OperationRequest.model_json_schema()["properties"]["page_token"]

    assert [s.get("maxLength") for s in schema["anyOf"] if s.get("type") == "string"] == [
        MAX_PAGE_TOKEN_CHARS
    ]


def test_a_typical_point_in_time_fits_comfortably() -> None:
    # A PIT id grows by some 50-100 base64 characters per shard: 20 shards' worth of random bytes fits.
    pit_id = base64.urlsafe_b64encode(random.Random(7).randbytes(1500)).decode()
    token = encode_page_token(PageToken(pit_id, ("2024-01-01T00:00:00Z", 12345678901234, 3), "f" * 32))

    assert len(token) < MAX_PAGE_TOKEN_CHARS
