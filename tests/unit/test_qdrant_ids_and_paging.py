"""Point ids (caller ids, deterministic derived ids) and scroll page tokens, without any I/O."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from scf.connectors.qdrant.ids import (
    MAX_POINT_ID,
    RESERVED_ID_KEY,
    ResolvedId,
    derive_id,
    public_id,
    resolve_id,
)
from scf.connectors.qdrant.paging import decode_page_token, encode_page_token, query_fingerprint
from scf.schemas.errors import PermanentError

UUID_TEXT = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0, ResolvedId(0)),
        (42, ResolvedId(42)),
        ("42", ResolvedId(42)),
        (MAX_POINT_ID, ResolvedId(MAX_POINT_ID)),
        (UUID_TEXT, ResolvedId(UUID_TEXT)),
        (UUID_TEXT.upper(), ResolvedId(UUID_TEXT)),
    ],
)
def test_ids_qdrant_accepts_are_used_as_they_are(given: int | str, expected: ResolvedId) -> None:
    assert resolve_id(given) == expected


@pytest.mark.parametrize("given", ["doc-1", "007", "-3", str(MAX_POINT_ID + 1), ""])
def test_other_strings_become_a_stable_uuid_and_keep_the_original(given: str) -> None:
    resolved = resolve_id(given)

    assert resolved == resolve_id(given)
    assert uuid.UUID(str(resolved.point_id)).version == 5
    assert resolved.original == given
    assert resolved.public == given


@pytest.mark.parametrize("given", [-1, MAX_POINT_ID + 1])
def test_integers_outside_unsigned_64_bits_are_invalid_data(given: int) -> None:
    with pytest.raises(PermanentError) as caught:
        resolve_id(given)

    assert caught.value.code == "INVALID_DATA"


def test_derived_ids_are_deterministic_per_key_and_position() -> None:
    first = [derive_id("batch-2024-01", i) for i in range(3)]

    assert first == [derive_id("batch-2024-01", i) for i in range(3)]
    assert len(set(first)) == 3
    assert derive_id("batch-2024-02", 0) not in first
    assert all(uuid.UUID(i).version == 5 for i in first)


def test_derived_ids_never_collide_with_caller_text_ids() -> None:
    assert derive_id("k", 0) != resolve_id("k:0").point_id


def test_public_id_prefers_the_callers_own_id() -> None:
    assert public_id(UUID_TEXT, {RESERVED_ID_KEY: "doc-1", "city": "Paris"}) == "doc-1"
    assert public_id(7, {"city": "Paris"}) == 7
    assert public_id(uuid.UUID(UUID_TEXT), None) == UUID_TEXT


@pytest.mark.parametrize("offset", [0, 12345, UUID_TEXT])
def test_page_token_round_trips_the_offset(offset: int | str) -> None:
    fingerprint = query_fingerprint("vectors", {"must": []})

    assert decode_page_token(encode_page_token(offset, fingerprint), fingerprint) == offset


def test_page_token_of_another_query_is_refused() -> None:
    token = encode_page_token(10, query_fingerprint("vectors", None))

    with pytest.raises(PermanentError) as caught:
        decode_page_token(token, query_fingerprint("vectors", {"must": [{"key": "a", "match": 1}]}))

    assert caught.value.code == "INVALID_REQUEST"
    assert "another collection or filter" in caught.value.message


def _forged(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _forged({"v": 1, "o": -5, "q": "x"}),
        _forged({"v": 1, "o": "not-a-uuid", "q": "x"}),
        _forged({"v": 1, "o": True, "q": "x"}),
        _forged({"v": 99, "o": 1, "q": "x"}),
        _forged([1, 2]),
    ],
)
def test_garbled_page_tokens_are_invalid_requests(token: str) -> None:
    with pytest.raises(PermanentError) as caught:
        decode_page_token(token, "x")

    assert caught.value.message == "page_token is not a token this connector issued"


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    a = query_fingerprint("c", {"must": [{"key": "x", "match": 1}], "should": None})
    b = query_fingerprint("c", {"should": None, "must": [{"match": 1, "key": "x"}]})

    assert a == b
    assert a != query_fingerprint("d", {"must": [{"key": "x", "match": 1}], "should": None})
