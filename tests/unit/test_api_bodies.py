"""The decoded-size cap: gzip bombs, stacked and multi-member encodings, raw deflate, bad JSON."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from scf.connectors.web.bodies import BoundedDecoder, FetchedBody
from scf.schemas.errors import PermanentError
from tests.support.http_servers import gzip_bomb

MIB = 1024 * 1024


def decode(encoding: str | None, body: bytes, max_bytes: int, chunk: int = 65536) -> bytes:
    decoder = BoundedDecoder(encoding, max_bytes)
    for start in range(0, len(body), chunk):
        decoder.feed(body[start : start + chunk])
    return decoder.finish()


def test_a_gzip_bomb_stops_at_the_cap_without_expanding() -> None:
    bomb = gzip_bomb(64 * MIB)  # ~64 KiB on the wire

    with pytest.raises(PermanentError) as caught:
        decode("gzip", bomb, max_bytes=1 * MIB)

    assert len(bomb) < 200 * 1024
    assert caught.value.code == "LIMIT_EXCEEDED"
    assert "decoded" in caught.value.message


def test_a_doubly_gzipped_bomb_stops_at_the_cap_too() -> None:
    double = gzip.compress(gzip_bomb(64 * MIB))

    with pytest.raises(PermanentError) as caught:
        decode("gzip, gzip", double, max_bytes=1 * MIB)

    assert caught.value.code == "LIMIT_EXCEEDED"


def test_bodies_within_the_cap_decode_exactly() -> None:
    payload = json.dumps({"data": list(range(5000))}).encode()

    assert decode(None, payload, MIB) == payload
    assert decode("identity", payload, MIB) == payload
    assert decode("gzip", gzip.compress(payload), MIB, chunk=7) == payload
    assert decode("x-gzip", gzip.compress(payload), MIB) == payload
    assert decode("deflate", zlib.compress(payload), MIB) == payload
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode("deflate", raw.compress(payload) + raw.flush(), MIB) == payload
    assert decode("gzip, gzip", gzip.compress(gzip.compress(payload)), MIB) == payload


def test_concatenated_gzip_members_all_count() -> None:
    body = gzip.compress(b"a" * 1000) + gzip.compress(b"b" * 1000)

    assert decode("gzip", body, 4096) == b"a" * 1000 + b"b" * 1000
    with pytest.raises(PermanentError):
        decode("gzip", body, 1500)


def test_many_empty_gzip_members_cannot_stream_forever() -> None:
    empties = gzip.compress(b"") * 10_000  # nothing decoded, 200 KB on the wire

    with pytest.raises(PermanentError) as caught:
        decode("gzip", empties, 64 * 1024)

    assert caught.value.code == "LIMIT_EXCEEDED"


def test_plain_bodies_over_the_cap_are_refused() -> None:
    with pytest.raises(PermanentError):
        decode(None, b"x" * 2048, 1024)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip, gzip"])
def test_unsupported_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(PermanentError) as caught:
        BoundedDecoder(encoding, MIB)

    assert caught.value.code == "INVALID_DATA"


def test_corrupt_gzip_is_invalid_data() -> None:
    with pytest.raises(PermanentError) as caught:
        decode("gzip", b"\x1f\x8b\x08\x00garbage-garbage", MIB)

    assert caught.value.code == "INVALID_DATA"


def test_a_body_that_is_not_json_says_what_it_was() -> None:
    body = FetchedBody(200, httpx.Headers({"content-type": "text/html"}), b"<html>", httpx.URL("http://x/"))

    with pytest.raises(PermanentError) as caught:
        body.json()

    assert caught.value.code == "INVALID_DATA"
    assert "text/html" in caught.value.message
    assert "<html>" not in repr(body)
