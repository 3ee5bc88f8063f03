"""The gateway's edge helpers, without a network: the byte budget, strict JSON, refusal bodies, settings."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from scf.dispatcher.dispatcher import MAX_REQUEST_BYTES as DISPATCHER_LIMIT
from scf.fleet.settings import MAX_REQUEST_BYTES, Settings
from scf.gateway.bodies import ByteBudget, object_weight
from scf.gateway.errors import http_status, refusal_body
from scf.gateway.strict_json import MAX_JSON_DEPTH, BodyRefusedHTTPError, max_nesting, parse_body
from scf.schemas.errors import ErrorCode, PermanentError, ResourceError
from tests.support.timing import best_of


def test_small_bodies_are_always_admitted_and_large_ones_only_within_the_budget() -> None:
    budget = ByteBudget(limit=100, always_admitted=10)

    assert budget.take(60, 60)
    assert not budget.take(60, 60)  # would hold 120 > 100
    assert budget.take(10, 10)  # small: admitted even past the budget, and counted
    assert budget.held == 70
    budget.give_back(60)
    assert budget.take(30, 30)
    assert budget.held == 40


def test_a_chunked_body_is_refused_once_its_running_total_is_large_and_the_budget_full() -> None:
    budget = ByteBudget(limit=20, always_admitted=10)

    assert budget.take(15, 15)
    assert budget.take(5, 5)  # a small body's first chunk
    assert budget.take(5, 10, holding=5)  # still small
    assert not budget.take(1, 11, holding=10)  # now large, and 25 + 1 > 20


def test_a_body_alone_is_admitted_whatever_it_weighs() -> None:
    budget = ByteBudget(limit=10, always_admitted=1)

    assert budget.take(50, 50)  # nothing else held: one body is bounded by the size limit
    assert not budget.take(5, 5)  # but nobody joins it
    assert budget.take(100, 50, holding=50)  # it may grow (its parse weight) while still alone
    budget.give_back(150)
    assert budget.held == 0


def test_the_parse_weight_counts_the_objects_a_body_becomes() -> None:
    tiny_containers = b"[" + b"{}," * 999 + b"{}]"
    one_string = b'{"pad": "' + b"a" * 2990 + b'"}'

    assert len(tiny_containers) == len(one_string) == 3001
    assert object_weight(tiny_containers) > 90_000  # ~1000 dicts of 64 B and their pointers
    assert object_weight(one_string) < 500  # two strings and a dict


def test_strict_json_accepts_what_json_accepts() -> None:
    text = '{"a": [1, 2.5, true, null, "caf\\u00e9", "\\ud83d\\ude00"], "b": {"c": "é"}}'

    assert parse_body(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b'{"k": "\\ud800"}', 422, ErrorCode.INVALID_REQUEST),  # lone high surrogate, escaped
        (b'{"k": "\\uDFFF x"}', 422, ErrorCode.INVALID_REQUEST),  # lone low surrogate, upper case
        (b'{"\\ud800": 1}', 422, ErrorCode.INVALID_REQUEST),  # in a key
        (b'["\\ude00\\ud83d"]', 422, ErrorCode.INVALID_REQUEST),  # a pair in the wrong order
        (b'"\\ud800"', 422, ErrorCode.INVALID_REQUEST),  # a bare string
        (b'{"k": "\xed\xa0\x80"}', 400, ErrorCode.INVALID_JSON),  # a surrogate encoded as UTF-8
        (b'{"k": "\xff"}', 400, ErrorCode.INVALID_JSON),  # not UTF-8 at all
        (b"[" * 100_000 + b"]" * 100_000, 400, ErrorCode.LIMIT_EXCEEDED),  # past the C parser's stack
        (b"[" * MAX_JSON_DEPTH + b"1" + b"]" * MAX_JSON_DEPTH, 400, ErrorCode.LIMIT_EXCEEDED),
    ],
)
def test_strict_json_refuses_with_a_typed_error(raw: bytes, status: int, code: ErrorCode) -> None:
    with pytest.raises(BodyRefusedHTTPError) as refused:
        parse_body(raw)

    assert refused.value.status_code == status
    assert refused.value.error.code == code


def test_depth_is_counted_as_the_dispatcher_counts_it() -> None:
    deepest_allowed = "[" * (MAX_JSON_DEPTH - 1) + "1" + "]" * (MAX_JSON_DEPTH - 1)
    empty_at_the_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH

    assert parse_body(deepest_allowed.encode()) is not None
    assert parse_body(empty_at_the_limit.encode()) is not None


@pytest.mark.parametrize(
    ("text", "nesting"),
    [
        ("1", 0),
        ("[]", 1),
        ("[[1], {}]", 2),
        ('{"a": "[[[[{{{{", "b": [{}]}', 3),  # brackets inside strings do not count
        ('["\\\\", "\\"[[[", [[]]]', 3),  # nor after escaped quotes and backslashes
    ],
)
def test_nesting_is_counted_outside_strings(text: str, nesting: int) -> None:
    assert max_nesting(text.encode()) == nesting


def test_malformed_json_is_refused_naming_line_and_column() -> None:
    with pytest.raises(BodyRefusedHTTPError) as refused:
        parse_body(b'{"a": 1,\n  "b": }')

    assert refused.value.status_code == 400
    assert refused.value.error.code == ErrorCode.INVALID_JSON
    assert refused.value.error.message == "invalid JSON at line 2 column 8: Expecting value"


def _refusal_or_value(raw: bytes) -> Callable[[], object]:
    def work() -> object:
        try:
            return parse_body(raw)
        except (BodyRefusedHTTPError, json.JSONDecodeError) as exc:
            return exc

    return work


@pytest.mark.parametrize(
    "unit",
    [
        '"\\ud83d\\ude00",',  # valid pairs: the surrogate scan finds escapes, the walk must run
        '"\\ud83d\\u",',  # a half escape (malformed) after a valid one
        "[[],{}],",  # brackets: the depth walk runs over many small containers
        '{"\\ud83d\\ude00":"é"},',  # non-ASCII keys and values
        "\\u" * 4 + ",",  # escape starts outside strings (malformed)
        '"\\"\\\\[{\\"",',  # escaped quotes and backslashes: the string scanner's worst case
        "[" * 62 + "0" + "]" * 62 + ",",  # deep, just under the limit: the walk runs all of it
    ],
)
def test_strict_json_is_linear_on_worst_case_input(unit: str) -> None:
    def body(size: int) -> bytes:
        return ("[" + unit * (size // len(unit)) + "0]").encode()

    small = best_of(5, _refusal_or_value(body(1024)))
    large = best_of(2, _refusal_or_value(body(1024 * 1024)))
    stdlib_small = best_of(5, _loads_or_error(body(1024)))
    stdlib_large = best_of(2, _loads_or_error(body(1024 * 1024)))

    # Linear means scaling like json.loads does on the same text (itself ~4000-8000x from 1 KB to 1 MB
    # on many small containers: allocator and GC, so a bare "under 2000x" would fail the stdlib too).
    # A quadratic step here would be ~10^6x, and seconds in absolute terms.
    assert large < 3.0
    assert large / max(small, 1e-6) < 10 * max(stdlib_large / max(stdlib_small, 1e-6), 1000)


def _loads_or_error(raw: bytes) -> Callable[[], object]:
    def work() -> object:
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return exc

    return work


def test_refusal_bodies_follow_the_route() -> None:
    info = PermanentError("too big", code=ErrorCode.REQUEST_TOO_LARGE).to_info()

    execute = refusal_body("POST", "/connectors/db/execute", info)
    other = refusal_body("POST", "/connectors", info)

    assert execute["status"] == "failed" and execute["error"]["code"] == "REQUEST_TOO_LARGE"
    assert "records_processed" in execute
    assert other == {"status": "failed", "error": info.model_dump(mode="json")}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.REQUEST_TOO_LARGE, 413),
        (ErrorCode.OPERATION_ID_IN_USE, 409),
        (ErrorCode.GATEWAY_BUSY, 503),
    ],
)
def test_the_edges_codes_have_their_http_status(code: ErrorCode, status: int) -> None:
    assert http_status(ResourceError("x", code=code).to_info()) == status


def test_gateway_settings_default_to_the_dispatchers_limit_and_trust_no_proxy() -> None:
    settings = Settings()

    assert settings.scf_max_request_bytes == MAX_REQUEST_BYTES == DISPATCHER_LIMIT == 16 * 1024 * 1024
    assert settings.trusted_proxies == []


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings(scf_trusted_proxies=" 10.0.0.0/8, 192.168.1.7 ,::1")

    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.1.7", "::1"]
    with pytest.raises(ValidationError):
        Settings(scf_trusted_proxies="10.0.0.0/8, proxy.internal")
