"""Encode once, validate once: orjson for AMQP bodies with the standard library's answers kept, no
re-validation or copy of an addressed request inside a process, and no retry loop built per call."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
import uuid
from typing import Any

import pytest

from scf.connectors import execution as execution_module
from scf.connectors import retry as retry_module
from scf.connectors.circuit import LocalBreakerBoard
from scf.connectors.execution import Execution
from scf.connectors.retry import RetryPolicy
from scf.dispatcher.routing import MAX_JSON_DEPTH, _depth
from scf.dispatcher.routing import decode as decode_request
from scf.factory import ServiceConnectorFactory
from scf.fleet import amqp
from scf.schemas.errors import ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationEnvelope, OperationRequest, OperationResult, prepare_request
from tests.unit.test_breaker import POLICY, build, down

# --- decode: orjson's speed, json's answers ------------------------------------------------------------

#: Texts where orjson alone would answer differently from `json.loads(raw.decode("utf-8"))`, and some
#: where both agree; `amqp.decode` must give exactly the standard answer for all of them.
DECODE_CORPUS = [
    b'{"a": 1, "b": [true, false, null], "c": "\xc3\xa9"}',
    b"NaN",
    b'{"x": Infinity, "y": -Infinity}',
    b"1e400",
    b"-1e400",
    b"123456789012345678901234567890",
    b"-9999999999999999999",  # 19 digits, past int64: orjson reads a float
    b"-9223372036854775809",
    b"18446744073709551615",
    b"18446744073709551616",
    b'{"id": 340282366920938463463374607431768211457}',
    b'"\\ud800"',  # a lone surrogate escape: json accepts it (the edges refuse it later)
    b'"\\uDFFF"',
    b'"\\ud83d\\ude00"',
    b'"\xed\xa0\x80"',  # an encoded surrogate: not UTF-8
    b"\xff\xfe",
    b'\xef\xbb\xbf{"a": 1}',  # a byte order mark
    b'{"a": 1, "a": 2}',
    b'"a\x01b"',
    b"{} x",
    b"",
    b"[1,]",
    b"01",
    b"-0",
    b"1.7976931348623157e309",
    b'{"\\u0000": 1}',
    b"[" * 1500 + b"]" * 1500,  # past orjson's depth limit (1024): json's own answer
    b"[" * 100_000 + b"]" * 100_000,  # past json's recursion limit: a RecursionError, as before
]


def outcome(read: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", read(raw)
    except RecursionError:
        return "error", "recursion"
    except ValueError:
        return "error", "value"


def standard(raw: bytes) -> tuple[str, Any]:
    return outcome(lambda raw: json.loads(raw.decode("utf-8")), raw)


def ours(raw: bytes) -> tuple[str, Any]:
    return outcome(amqp.decode, raw)


def same(a: Any, b: Any) -> bool:
    """Equal with types (1 is not 1.0) and NaN equal to NaN.

    Iterative: since Python 3.13 `json` decodes the 1,500-deep corpus entry, deeper than recursion allows.
    """
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if isinstance(x, float) and isinstance(y, float) and x != x and y != y:
            continue
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("raw", DECODE_CORPUS, ids=lambda raw: repr(raw[:24]))
def test_decode_gives_the_standard_decoders_answer(raw: bytes) -> None:
    expected, got = standard(raw), ours(raw)
    assert expected[0] == got[0], (expected, got)
    assert same(expected[1], got[1]), (expected, got)


def test_decode_keeps_big_integers_exact_wherever_they_are() -> None:
    big = 2**70 + 1
    raw = json.dumps({"records": [{"id": i} for i in range(50)] + [{"id": big}, {"id": -big}]}).encode()
    records = amqp.decode(raw)["records"]
    assert records[-2]["id"] == big and type(records[-2]["id"]) is int
    assert records[-1]["id"] == -big


def test_the_dispatcher_refuses_what_it_refused_before() -> None:
    for raw, code in [
        (b"NaN", ErrorCode.INVALID_REQUEST),  # a number, not an object
        (b'{"a": ', ErrorCode.INVALID_JSON),
        (b'{"a": "\xed\xa0\x80"}', ErrorCode.INVALID_JSON),
        (b'{"a": "\\ud800"}', ErrorCode.INVALID_REQUEST),  # lone surrogate: refuse_unencodable
        (b"[" * 100_000 + b"]" * 100_000, ErrorCode.INVALID_JSON),  # RecursionError, typed
        (b'{"a":' * 100 + b"1" + b"}" * 100, ErrorCode.LIMIT_EXCEEDED),
    ]:
        with pytest.raises(PermanentError) as caught:
            decode_request("operation.execute", "application/json", raw, 1 << 20)
        assert caught.value.code == code, raw[:20]
    body = decode_request("operation.execute", None, b'{"data": {"n": 123456789012345678901234}}', 1024)
    assert body.body["data"]["n"] == 123456789012345678901234


# --- encode: a dict through orjson, json where orjson would differ --------------------------------------


@dataclasses.dataclass
class Point:
    x: int


def test_encode_reads_back_as_the_standard_encoder_wrote_it() -> None:
    body: dict[Any, Any] = {
        "text": "é ✓ \U0001f600",
        "numbers": [0, -1, 2**63 - 1, 1.5, 1e16, -0.0],
        "nested": {"a": [{"b": None, "c": True}]},
        "when": datetime.datetime(2026, 12, 4, 10, 0, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 12, 4),
        "id": uuid.UUID(int=7),
        "point": Point(1),
        "tuple": (1, 2),
        1: "an int key",
    }
    assert json.loads(amqp.encode(body)) == json.loads(json.dumps(body, default=str))


@pytest.mark.parametrize(
    "body",
    [
        {"big": 2**70},  # past 64 bits: orjson refuses, json writes it exactly
        {"neg": -(2**64)},
        {"text": "lone \ud800 surrogate"},  # orjson refuses; json escapes it and the edges refuse it
        {"key \udfff": 1},
    ],
)
def test_what_orjson_refuses_is_encoded_exactly_as_before(body: dict[str, Any]) -> None:
    assert amqp.encode(body) == json.dumps(body, separators=(",", ":"), default=str).encode()


def test_a_lone_surrogate_still_reaches_the_dispatchers_refusal() -> None:
    raw = amqp.encode({"operation": "query", "data": {"x": "a\ud800"}})
    with pytest.raises(PermanentError) as caught:
        decode_request("operation.execute", "application/json", raw, 1 << 20)
    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_non_finite_floats_become_null_as_the_model_serializer_writes_them() -> None:
    encoded = amqp.encode({"nan": float("nan"), "inf": float("inf")})
    assert json.loads(encoded) == {"nan": None, "inf": None}
    request = OperationRequest(operation="query", data={"nan": float("nan")})
    assert json.loads(amqp.encode(request))["data"] == {"nan": None}


def test_a_model_is_encoded_once_by_its_own_serializer() -> None:
    result = OperationResult(operation_id="op_1", status="success", result_data={"rows": [1]})
    assert amqp.encode(result) == result.model_dump_json().encode()
    assert OperationResult.model_validate(amqp.decode(amqp.encode(result))) == result


# --- validate once: an addressed request is passed on as it is -----------------------------------------


def test_an_addressed_request_is_neither_validated_nor_copied_again() -> None:
    request = prepare_request({"operation": "preview", "data": {"a": 1}}, "svc")
    assert request.service_name == "svc" and request.operation_id is not None
    assert prepare_request(request, "svc") is request
    assert request.with_defaults("svc") is request
    moved = prepare_request(OperationRequest(operation="preview", service_name=None), "svc")
    assert moved.service_name == "svc" and moved.operation_id is not None
    with pytest.raises(PermanentError) as caught:
        prepare_request(request, "other")
    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_the_envelope_carries_the_validated_request_and_reads_back_equal() -> None:
    request = prepare_request({"operation": "preview", "parameters": {"rows": 1}}, "svc")
    envelope = OperationEnvelope(request=request, service_type="csv", connector_version=3, deadline=1e10)
    assert envelope.request is request  # not validated into a copy
    assert OperationEnvelope.model_validate_json(amqp.encode(envelope)) == envelope


async def test_the_factory_runs_the_request_object_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[OperationRequest] = []
    async with ServiceConnectorFactory() as factory:
        connector = await factory.create_connector({"service_type": "csv", "service_name": "svc"})
        run = type(connector).execute

        async def spy(self: Any, request: OperationRequest) -> Any:
            seen.append(request)
            return await run(self, request)

        monkeypatch.setattr(type(connector), "execute", spy)
        request = prepare_request(
            {"operation": "preview", "data": {"file_data": "a\n1\n"}, "parameters": {"rows": 1}}, "svc"
        )
        result = await factory.execute_operation("svc", request)
    assert result.ok and result.operation_id == request.operation_id
    assert seen == [request] and seen[0] is request


# --- one retry policy per connector; no retry loop on a first-try success ------------------------------


async def test_a_first_try_success_builds_no_retry_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loops: list[float] = []
    real = retry_module.retrying

    def counting(policy: RetryPolicy, deadline: float, on_retry: Any = None) -> Any:
        loops.append(deadline)
        return real(policy, deadline, on_retry)

    monkeypatch.setattr(execution_module, "retrying", counting)
    fakes, endpoints = build([["ok", "ok", "ok"]])
    execution = Execution(LocalBreakerBoard(POLICY), lambda _: RetryPolicy(attempts=3, base_delay=0.001))
    for _ in range(3):
        outcome = await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
        assert outcome.result_data == {"served_by": "primary"}
    assert loops == [] and fakes[0].calls == 3

    fakes, endpoints = build([[down(), "ok"]])
    await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert len(loops) == 1 and fakes[0].calls == 2  # a retry: the loop, built only now


@pytest.mark.parametrize(("failures", "attempts", "calls", "ok"), [(2, 3, 3, True), (5, 2, 3, False)])
async def test_retries_count_attempts_as_before(failures: int, attempts: int, calls: int, ok: bool) -> None:
    """The failed first try is attempt 1 of the tenacity loop: retries, waits and the stop are the same."""
    retried: list[tuple[str, int]] = []
    fakes, endpoints = build([[down()] * failures])
    execution = Execution(
        LocalBreakerBoard(POLICY.__class__(min_failures=100)),
        lambda _: RetryPolicy(attempts=attempts, base_delay=0.001, jitter=0.0),
    )

    def on_retry(_connector: Any, error: Any, attempt: int) -> None:
        retried.append((error.code, attempt))

    request = OperationRequest(operation="query")
    if ok:
        await execution.run(endpoints, request, time.time() + 60, on_retry)
    else:
        with pytest.raises(TransientError):
            await execution.run(endpoints, request, time.time() + 60, on_retry)
    assert fakes[0].calls == calls
    assert retried == [(ErrorCode.CONNECTION_FAILED, n) for n in range(1, calls)]


async def test_a_permanent_first_failure_is_not_retried_and_no_retries_means_one_call() -> None:
    bad = PermanentError("bad", code=ErrorCode.INVALID_DATA)
    fakes, endpoints = build([[bad]])
    execution = Execution(LocalBreakerBoard(POLICY), lambda _: RetryPolicy(attempts=3, base_delay=0.001))
    with pytest.raises(PermanentError):
        await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert fakes[0].calls == 1

    fakes, endpoints = build([[down(), down()]])
    execution = Execution(LocalBreakerBoard(POLICY), lambda _: RetryPolicy(attempts=0))
    with pytest.raises(TransientError):
        await execution.run(endpoints, OperationRequest(operation="query"), time.time() + 60, None)
    assert fakes[0].calls == 1


async def test_the_factory_keeps_one_policy_per_connector_setting() -> None:
    async with ServiceConnectorFactory(retry_delay=0.5) as factory:
        one = await factory.create_connector({"service_type": "csv", "service_name": "one"})
        two = await factory.create_connector(
            {"service_type": "csv", "service_name": "two", "retry_attempts": 5}
        )
        first = factory._retry_policy(one)
        assert factory._retry_policy(one) is first
        assert (first.attempts, first.base_delay) == (3, 0.5)
        assert factory._retry_policy(two).attempts == 5
        assert first.stop_after_attempts is first.stop_after_attempts  # tenacity parts built once
        factory.retry_delay = 2.0  # a changed setting is honoured, not served stale
        assert factory._retry_policy(one).base_delay == 2.0


# --- the depth check: the same answers as the walk it replaced, in C passes ------------------------------


def reference_depth(value: Any) -> int:
    """The walk `_depth` replaced (container by container), kept here as the oracle."""
    if not isinstance(value, dict | list):
        return 1
    deepest = 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if children and depth + 1 > deepest:
            deepest = depth + 1
            if deepest > MAX_JSON_DEPTH:
                return deepest
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return deepest


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value, "s": "x"}
    return value


DEPTH_CASES: list[Any] = [
    1,
    "text",
    None,
    {},
    [],
    {"a": 1},
    {"a": {}},
    {"a": []},
    [[], [[]], [[[]]]],
    {"a": {"b": []}},
    {"records": [{"id": i, "tags": [i] if i % 7 == 0 else []} for i in range(300)]},
    {"deep_last": [{"x": 1}] * 50 + [nested(20, 1)]},
    nested(62, 1),
    nested(63, 1),
    nested(63, []),
    nested(63, [1]),
    nested(64, 1),
    nested(200, 1),
    [nested(70, {})] + [1] * 10,
    {"wide": [[1, 2, {"a": [3]}]] * 100, "other": {"b": {"c": {"d": []}}}},
]


@pytest.mark.parametrize("value", DEPTH_CASES, ids=range(len(DEPTH_CASES)))
def test_depth_gives_the_answers_of_the_walk_it_replaced(value: Any) -> None:
    assert _depth(value) == reference_depth(value)


def test_depth_of_a_parsed_hostile_body_refuses_at_the_same_place() -> None:
    for levels in (62, 63, 64, 65):
        raw = ("[" * levels + "1" + "]" * levels).encode()
        parsed = amqp.decode(raw)
        assert _depth(parsed) == reference_depth(parsed)
        assert (_depth(parsed) > MAX_JSON_DEPTH) == (levels + 1 > MAX_JSON_DEPTH)


@pytest.mark.parametrize("levels", [62, 63, 64])
def test_the_bracket_count_shortcut_never_lets_a_too_deep_body_through(levels: int) -> None:
    """63 containers nest at most 64 levels (the limit): the walk is skipped only below that count."""
    raw = ("[" * levels + "1" + "]" * levels).encode()
    if levels + 1 > MAX_JSON_DEPTH:
        with pytest.raises(PermanentError) as caught:
            decode_request("operation.execute", None, b'{"a":' + raw + b"}", 1 << 20)
        assert caught.value.code == ErrorCode.LIMIT_EXCEEDED
    else:
        body = b'{"a":' + raw + b"}"
        expected = reference_depth(json.loads(body)) > MAX_JSON_DEPTH
        try:
            decode_request("operation.execute", None, body, 1 << 20)
            refused = False
        except PermanentError as exc:
            assert exc.code == ErrorCode.LIMIT_EXCEEDED
            refused = True
        assert refused == expected
