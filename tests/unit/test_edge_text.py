"""The AMQP edge's pure helpers: unencodable text, operation-id identity, forward time, audit identity."""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from scf.dispatcher.routing import decode
from scf.fleet import amqp, audit
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest, delivery_identity
from scf.schemas.validation import refuse_unencodable, unencodable_path

LIMIT = 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": "ok", "b": ["x", {"c": "\ud800"}]}, "b[1].c"),
        ({"h": {"X-\udc00": "v"}}, "h.X-\\udc00"),
        ("\ud800", "(body)"),
        ({"emoji": "\U0001f600", "n": 1, "none": None}, None),
    ],
)
def test_unencodable_path_names_where(value: Any, path: str | None) -> None:
    assert unencodable_path(value) == path


def test_a_lone_surrogate_escape_is_refused_at_decode_naming_where() -> None:
    raw = b'{"service_name":"s","operation":"query","data":{"k":"\\ud800"}}'
    with pytest.raises(PermanentError) as refused:
        decode("operation.execute", "application/json", raw, LIMIT)
    assert refused.value.code == ErrorCode.INVALID_REQUEST and "data.k" in refused.value.message


@pytest.mark.parametrize("raw", [b'{"a":"\xed\xa0\x80"}', b'{"a":"\xff"}', b"\xef\xbb\xbf{}"])
def test_bytes_that_are_not_strict_utf8_are_invalid_json(raw: bytes) -> None:
    with pytest.raises(PermanentError) as refused:
        decode("connector.list", None, raw, LIMIT)
    assert refused.value.code == ErrorCode.INVALID_JSON


def test_a_surrogate_pair_escape_is_fine() -> None:
    decoded = decode("connector.list", None, b'{"x":"\\ud83d\\ude00","y":"\\\\ud800"}', LIMIT)
    assert decoded.body == {"x": "\U0001f600", "y": "\\ud800"}


def _timed(raw: bytes, body: Any) -> float:
    # The walk allocates nothing that lives; a collection of the test's own 1 MB of objects is not its cost.
    gc.disable()
    try:
        started = time.perf_counter()
        refuse_unencodable(raw, body)
        return time.perf_counter() - started
    finally:
        gc.enable()


@pytest.mark.parametrize("unit", ['"\\ud83d\\ude00"', '{"\\ud83d\\ude00":1}'])
def test_the_surrogate_check_is_linear(unit: str) -> None:
    """Worst case for the walk: every string triggers the prefilter and must be encoded (1 MB vs 1 KB)."""

    def body(size: int) -> tuple[bytes, Any]:
        raw = ("[" + ",".join([unit] * (size // len(unit))) + "]").encode()
        return raw, json.loads(raw)

    small, large = body(1024), body(1024 * 1024)
    small_time = min(_timed(*small) for _ in range(5))
    large_time = min(_timed(*large) for _ in range(3))  # best of 3: one busy-machine pause is not a verdict
    assert large_time < 3.0
    # 1024x the input: linear is ~1,000x (up to a few times that from cache misses on 1 MB under load),
    # quadratic ~1,000,000x; 8,000 tells them apart without failing on a busy machine.
    assert large_time / max(small_time, 1e-6) < 8000


@dataclass
class FakeMessage:
    """The two properties `audit.who` reads (a plain data carrier, not a client library)."""

    user_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)


def test_who_believes_the_caller_header_only_from_a_trusted_forwarder() -> None:
    audit.trust_forwarders(["gateway"])
    try:
        trusted = audit.who(FakeMessage("gateway", {"x-scf-caller": "http:alice"}))  # type: ignore[arg-type]
        other = audit.who(FakeMessage("mallory", {"x-scf-caller": "http:alice"}))  # type: ignore[arg-type]
        nobody = audit.who(FakeMessage(None, {"x-scf-caller": b"x" * 1000}))  # type: ignore[arg-type]
        named = {"x-scf-principal": "alice", "x-scf-via": "key"}
        forwarded = audit.who(FakeMessage("gateway", named))  # type: ignore[arg-type]
        forged = audit.who(FakeMessage("mallory", named))  # type: ignore[arg-type]
    finally:
        audit.trust_forwarders([])
    assert trusted == {"user": "gateway", "caller": "http:alice", "principal": "amqp:gateway"}
    assert other == {
        "user": "mallory",
        "caller": None,
        "principal": "amqp:mallory",
        "claimed_caller": "http:alice",
    }
    assert forwarded["principal"] == "key:alice"  # the principal a trusted forwarder names
    assert forged["principal"] == "amqp:mallory"  # anyone else's header names nobody
    assert nobody["user"] == "unknown" and nobody["caller"] is None
    assert len(nobody["claimed_caller"]) == audit.MAX_CALLER_CHARS


def test_the_forward_time_is_exact_and_old_float_headers_still_read() -> None:
    now = 1_796_364_300.310820

    def read(value: Any) -> float | None:
        return amqp.forwarded_at(FakeMessage(None, {amqp.FORWARDED_AT_HEADER: value}))  # type: ignore[arg-type]

    assert read(amqp.forwarded_at_value(now)) == now
    assert read(12.5) == 12.5
    assert read("soon") is None


def test_delivery_identity_is_the_key_else_the_correlation_id_else_the_content() -> None:
    one = OperationRequest(operation="query", parameters={"query": "SELECT 1"}, operation_id="op_1")
    two = OperationRequest(operation="query", parameters={"query": "SELECT 2"}, operation_id="op_1")
    assert delivery_identity("q", "c1", one) == delivery_identity("q", "c1", two)
    assert delivery_identity("q", "c1", one) != delivery_identity("q", "c2", one)
    # a reply queue re-declared under a new name after a broker restart: the same request
    assert delivery_identity("q", "c1", one) == delivery_identity("other", "c1", one)
    keyed = {"service_name": "db", "idempotency_key": "k1"}
    ask = one.model_copy(update=keyed)
    # asking again with the same key (a new call, a new correlation id) is the same request ...
    assert delivery_identity("q", "c1", ask) == delivery_identity("q2", "c9", ask)
    # ... another key, or the same key on another connector, is not
    assert delivery_identity("q", "c1", ask) != delivery_identity(
        "q", "c1", ask.model_copy(update={"idempotency_key": "k2"})
    )
    assert delivery_identity("q", "c1", ask) != delivery_identity(
        "q", "c1", ask.model_copy(update={"service_name": "db2"})
    )
    assert delivery_identity(None, None, one) == delivery_identity(None, None, one)
    assert delivery_identity(None, None, one) != delivery_identity(None, None, two)
