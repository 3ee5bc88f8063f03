"""The Redis connector's pure parts: request models, key prefixes and glob escaping, encoding, bounds."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import JsonValue

from scf.connectors.operation_table import Call
from scf.connectors.redis.bounds import block_ms, range_start, scan_cursor, window
from scf.connectors.redis.codec import decode, decode_name, encode, encode_json
from scf.connectors.redis.keys import KeySpace, escape_glob, key_problem, pattern_problem
from scf.connectors.redis.operations import OPERATIONS
from scf.schemas.errors import PermanentError
from scf.schemas.operation import OperationRequest

MIB = 1024 * 1024


def parsed(operation: str, data: dict[str, Any], parameters: dict[str, Any] | None = None) -> Call[Any, Any]:
    request = OperationRequest(operation=operation, data=data, parameters=parameters or {})
    return OPERATIONS[operation].parse(request, "redis")


def refused(operation: str, data: dict[str, Any], parameters: dict[str, Any] | None = None) -> str:
    with pytest.raises(PermanentError) as caught:
        parsed(operation, data, parameters)
    assert caught.value.code == "INVALID_REQUEST"
    return caught.value.message


# --- request models ----------------------------------------------------------------------------------


def test_a_misspelt_argument_is_refused_naming_the_field() -> None:
    message = refused("set", {"value": 1}, {"key": "k", "tll": 30})

    assert "tll" in message and "Extra inputs are not permitted" in message
    assert "tll" in refused("set", {"key": "k", "value": 1, "tll": 30})  # the old shape too


def test_every_operation_parses_its_data_before_any_io() -> None:
    for name, operation in OPERATIONS.items():
        with pytest.raises(PermanentError) as caught:
            operation.parse(OperationRequest(operation=name, data={"no_such_argument": 1}), "redis")
        assert caught.value.code == "INVALID_REQUEST", name


def test_keys_and_options_go_in_parameters_values_in_data() -> None:
    call = parsed("set", {"value": {"a": 1}}, {"key": "k", "ttl": 30, "nx": True})
    assert (call.parameters.key, call.parameters.ttl, call.parameters.nx, call.data.value) == (
        "k",
        30,
        True,
        {"a": 1},
    )
    old = parsed("set", {"key": "k", "value": {"a": 1}, "ttl": 30, "nx": True})
    assert (old.parameters, old.data) == (call.parameters, call.data)
    assert parsed("publish", {"message": "hi"}, {"channel": "c"}).parameters.channel == "c"
    assert parsed("publish", {"channel": "c", "message": "hi"}).parameters.channel == "c"


def test_a_key_in_both_places_is_refused() -> None:
    assert "give only parameters.key" in refused("get", {"key": "a"}, {"key": "b"})


def test_scan_and_xrange_page_with_page_size_and_take_the_old_count() -> None:
    assert parsed("scan", {}, {"match": "a*", "page_size": 10}).parameters.page_size == 10
    assert parsed("scan", {"match": "a*", "count": 10}).parameters.page_size == 10
    assert parsed("xrange", {"key": "s", "count": 5}).parameters.page_size == 5
    assert "page_size" in refused("xrange", {}, {"key": "s", "page_size": 0})


def test_only_paged_operations_take_a_page_token() -> None:
    request = OperationRequest(operation="get", parameters={"key": "k"}, page_token="1")
    with pytest.raises(PermanentError):
        OPERATIONS["get"].parse(request, "redis")


@pytest.mark.parametrize(
    ("key", "problem"),
    [("", "must not be empty"), ("a" * 1025, "longer than 1024"), ("a\x00b", "NUL"), ("\ud800", "Unicode")],
)
def test_bad_keys_are_refused(key: str, problem: str) -> None:
    assert problem in (key_problem(key) or "")
    assert "key" in refused("set", {"value": 1}, {"key": key})


def test_long_unicode_keys_count_bytes_not_characters() -> None:
    assert key_problem("é" * 512) is None  # 1024 bytes
    assert key_problem("é" * 513) is not None


def test_set_refuses_nx_with_xx_and_a_non_positive_ttl() -> None:
    assert "exclude" in refused("set", {"value": 1}, {"key": "k", "nx": True, "xx": True})
    assert "ttl" in refused("set", {"key": "k", "value": 1, "ttl": 0})


def test_zrange_refuses_arguments_of_the_other_mode() -> None:
    assert "min" in refused("zrange", {}, {"key": "z", "min": 1})
    assert "start" in refused("zrange", {"key": "z", "by": "score", "start": 1})
    call = parsed("zrange", {}, {"key": "z", "by": "score", "min": "(1.5", "max": "+inf", "count": 5})
    assert (call.parameters.min, call.parameters.max) == ("(1.5", "+inf")
    assert "max" in refused("zrange", {"key": "z", "by": "score", "max": "lots"})


def test_zadd_scores_are_numbers_and_flags_are_compatible() -> None:
    assert "members" in refused("zadd", {"members": {"a": "high"}}, {"key": "z"})
    assert "nx excludes" in refused("zadd", {"key": "z", "members": {"a": 1}, "nx": True, "gt": True})


def test_stream_ids_are_checked() -> None:
    assert parsed("xrange", {}, {"key": "s", "start": "(1-0", "end": "+"}).parameters.start == "(1-0"
    assert "start" in refused("xrange", {"key": "s", "start": "yesterday"})


def test_session_fields_starting_with_a_dollar_are_reserved() -> None:
    assert "reserved" in refused("session_create", {"data": {"$ttl": 5}})
    assert "reserved" in refused("session_update", {"remove": ["$ttl"]}, {"session_id": "a" * 43})
    assert "session_id" in refused("session_update", {"session_id": "../../etc"})


def test_decode_is_an_option_of_the_operations_that_return_values() -> None:
    assert parsed("get", {}, {"key": "k", "decode": "json"}).parameters.decode == "json"
    assert "decode" in refused("get", {}, {"key": "k", "decode": "yaml"})
    assert "decode" in refused("set", {"value": 1}, {"key": "k", "decode": "json"})


# --- key prefix isolation ----------------------------------------------------------------------------


def test_every_key_carries_the_literal_prefix() -> None:
    space = KeySpace("app:")

    assert space.key("user:1") == b"app:user:1"
    assert space.session("abc") == b"app:session:abc"
    assert space.channel("news") == b"app:news"
    assert space.strip(b"app:user:1") == "user:1"
    assert not space.owns(b"other:user:1")
    with pytest.raises(ValueError, match="outside"):
        space.strip(b"other:user:1")


def test_glob_characters_in_the_prefix_are_escaped_in_scan_patterns() -> None:
    space = KeySpace("t[1]*?\\:")

    assert escape_glob("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert space.pattern("*") == b"t\\[1\\]\\*\\?\\\\:*"


def test_a_pattern_cannot_end_in_an_unpaired_escape() -> None:
    assert pattern_problem("user:*") is None
    assert pattern_problem("user\\\\") is None
    assert "backslash" in (pattern_problem("user\\") or "")


def test_keys_that_are_not_utf8_come_back_marked() -> None:
    assert KeySpace("p:").strip(b"p:\xff\x00") == {"$base64": base64.b64encode(b"\xff\x00").decode()}


# --- value encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("héllo", "héllo".encode()),
        ("", b""),
        (42, b"42"),
        (-1.5, b"-1.5"),
        (True, b"true"),
        (None, b"null"),
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'.encode()),
        ([1, 2], b"[1,2]"),
        ({"$base64": base64.b64encode(b"\x00\xff").decode()}, b"\x00\xff"),
    ],
)
def test_values_are_stored_by_one_rule(value: JsonValue, stored: bytes) -> None:
    assert encode(value, "data.value", MIB) == stored


def test_values_that_cannot_be_stored_are_permanent_errors() -> None:
    with pytest.raises(PermanentError, match="not valid base64"):
        encode({"$base64": "!!"}, "data.value", MIB)
    with pytest.raises(PermanentError, match="finite"):
        encode(float("inf"), "data.value", MIB)
    with pytest.raises(PermanentError, match="Unicode"):
        encode("\ud800", "data.value", MIB)
    with pytest.raises(PermanentError) as caught:
        encode("x" * 11, "data.value", 10)
    assert caught.value.code == "LIMIT_EXCEEDED" and "data.value is 11 bytes" in caught.value.message


def test_reads_decode_text_by_default_and_json_on_request() -> None:
    assert decode(b'{"a":1}', "text") == '{"a":1}'
    assert decode(b'{"a":1}', "json") == {"a": 1}
    assert decode(b"plain words", "json") == "plain words"  # not JSON: given as text
    assert decode(b"42", "json") == 42
    assert decode(None, "json") is None


def test_binary_values_are_returned_base64_with_a_marker_never_an_error() -> None:
    raw = b"\x89PNG\r\n\x1a\n\xff"
    marker: JsonValue = {"$base64": base64.b64encode(raw).decode()}

    assert decode(raw, "text") == marker
    assert decode(raw, "json") == marker
    assert encode(marker, "v", MIB) == raw
    assert decode_name(b"\xff") == "$base64:/w=="


def test_session_fields_are_always_json_text() -> None:
    assert encode_json("5", "f") == b'"5"'
    assert encode_json({"n": 5}, "f") == b'{"n":5}'


# --- bounds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "length", "limit", "expected"),
    [
        (0, 9, None, 100, (0, 9)),
        (0, 999, None, 100, (0, 100)),  # one extra element tells whether it was truncated
        (0, -1, 5000, 100, (0, 100)),
        (-10, -1, 50, 100, (40, 49)),
        (-10, -1, 5, 100, (0, 4)),
        (5, 2, None, 100, None),
        (0, -1, 0, 100, None),
    ],
)
def test_index_windows_hold_at_most_limit_plus_one(
    start: int, stop: int, length: int | None, limit: int, expected: tuple[int, int] | None
) -> None:
    assert window(start, stop, length, limit) == expected


def test_xread_never_blocks_forever_nor_past_the_budget() -> None:
    assert block_ms(0, None, 30.0) == 29_000  # "as long as allowed": under the socket timeout
    assert block_ms(5_000, None, 30.0) == 5_000
    assert block_ms(5_000, 2.0, 30.0) == 1_750  # the request's budget, less time to reply
    assert block_ms(0, 0.1, 30.0) is None  # no time left: do not block at all (BLOCK 0 = forever)
    assert block_ms(1_000, None, 1.0) == 500


def test_page_tokens_are_checked() -> None:
    assert scan_cursor(None) == 0
    assert scan_cursor("1234") == 1234
    assert range_start(None, "-") == "-"
    assert range_start("(1700000000000-3", "-") == "(1700000000000-3"
    for bad in ("abc", "-1", "1" * 21):
        with pytest.raises(PermanentError):
            scan_cursor(bad)
    with pytest.raises(PermanentError):
        range_start("1-0", "-")
