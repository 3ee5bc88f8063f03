"""Pure parts of paged reads, statement limits, keyed writes and the result cache (no network)."""

from __future__ import annotations

import base64
import json

import pytest

from scf.connectors.postgresql.paging import PageToken, page_sql, query_digest, strip_terminator
from scf.connectors.postgresql.requests import QueryParameters, TransactionData
from scf.connectors.postgresql.statements import statement_timeout_ms
from scf.connectors.result_cache import MemoryResultCache, cache_key
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest, request_digest
from scf.schemas.validation import parse_model as parse

DIGEST = query_digest("SELECT * FROM t", [], ["id"], 100)


def test_a_keyset_token_round_trips_its_key() -> None:
    token = PageToken(DIGEST, after=(42, "2024-01-01T00:00:00")).encode()
    decoded = PageToken.decode(token, DIGEST)
    assert decoded.after == (42, "2024-01-01T00:00:00")
    assert "=" not in token  # URL-safe without padding


def test_an_offset_token_round_trips_its_offset() -> None:
    decoded = PageToken.decode(PageToken(DIGEST, offset=300).encode(), DIGEST)
    assert decoded.after is None
    assert decoded.offset == 300


@pytest.mark.parametrize(
    ("query", "params", "key", "size"),
    [
        ("SELECT * FROM u", [], ["id"], 100),  # another statement
        ("SELECT * FROM t", [1], ["id"], 100),  # other parameters
        ("SELECT * FROM t", [], ["name"], 100),  # other key
        ("SELECT * FROM t", [], ["id"], 50),  # other page size
    ],
)
def test_a_token_is_refused_for_another_query(
    query: str, params: list[int], key: list[str], size: int
) -> None:
    token = PageToken(DIGEST, after=(1,)).encode()
    with pytest.raises(PermanentError) as caught:
        PageToken.decode(token, query_digest(query, params, key, size))
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "another query" in caught.value.message


@pytest.mark.parametrize("token", ["", "!!!", "bm90IGpzb24", "eyJ2IjoyfQ", "eyJ2IjoxLCJxIjoiIn0"])
def test_malformed_tokens_are_permanent_errors(token: str) -> None:
    with pytest.raises(PermanentError) as caught:
        PageToken.decode(token, DIGEST)
    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_a_negative_offset_is_refused() -> None:
    raw = base64.urlsafe_b64encode(json.dumps({"v": 1, "q": DIGEST, "o": -5}).encode()).decode()
    with pytest.raises(PermanentError):
        PageToken.decode(raw, DIGEST)


def test_keyset_sql_binds_the_key_after_the_query_parameters() -> None:
    token = PageToken(DIGEST, after=(7, "x"))
    sql = page_sql("SELECT * FROM t WHERE a = $1 AND b = $2;", 2, 100, ["id", "name"], token)
    assert 'WHERE (scf_page."id", scf_page."name") > ($3, $4)' in sql
    assert sql.endswith('ORDER BY scf_page."id" NULLS FIRST, scf_page."name" NULLS FIRST LIMIT 101')
    assert "$2;" not in sql  # the terminator is gone, the query sits inside the subquery


def test_the_first_keyset_page_has_no_condition() -> None:
    sql = page_sql("SELECT id FROM t", 0, 10, ["id"], None)
    assert "WHERE" not in sql.split(") AS scf_page", 1)[1]
    assert sql.endswith('ORDER BY scf_page."id" NULLS FIRST LIMIT 11')


def test_offset_sql_keeps_the_query_order() -> None:
    sql = page_sql("SELECT id FROM t ORDER BY id", 0, 10, None, PageToken(DIGEST, offset=20))
    assert sql.endswith("LIMIT 11 OFFSET 20")
    assert "ORDER BY id\n)" in sql


def test_a_trailing_comment_cannot_swallow_the_wrapper() -> None:
    sql = page_sql("SELECT id FROM t -- note", 0, 10, ["id"], None)
    assert "-- note\n) AS scf_page" in sql


def test_key_columns_are_quoted_exactly() -> None:
    sql = page_sql("SELECT 1", 0, 1, ['we"ird'], None)
    assert 'scf_page."we""ird"' in sql


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(PermanentError):
        page_sql("SELECT 1", 0, 5, ["a", "b"], PageToken(DIGEST, after=(1,)))


def test_strip_terminator_removes_only_trailing_semicolons_and_blanks() -> None:
    assert strip_terminator("SELECT ';' ; ;\n ") == "SELECT ';'"


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"query": "SELECT 1", "page_key": ["id"]}, "page_key needs page_size"),
        ({"query": "SELECT 1", "page_size": 5, "page_key": ["id", "id"]}, "twice"),
        ({"query": "SELECT 1", "cache_ttl": 0}, "cache_ttl"),
        ({"query": "SELECT 1", "page_size": 0}, "page_size"),
    ],
)
def test_query_parameters_that_do_not_fit_are_refused(parameters: dict[str, object], fragment: str) -> None:
    with pytest.raises(PermanentError) as caught:
        parse(QueryParameters, parameters, "parameters")
    assert fragment in caught.value.message


def test_transaction_steps_name_only_writes() -> None:
    with pytest.raises(PermanentError) as caught:
        parse(TransactionData, {"steps": [{"operation": "query", "data": {}}]}, "data")
    assert "steps" in caught.value.message
    with pytest.raises(PermanentError):
        parse(TransactionData, {"steps": []}, "data")


def test_statement_timeout_follows_the_time_left() -> None:
    assert statement_timeout_ms(None) is None
    assert statement_timeout_ms(2.5) == 2500
    assert statement_timeout_ms(0.0001) == 50  # never zero, which would mean "no limit"


def test_request_digest_ignores_key_order_but_not_values() -> None:
    a = request_digest(
        OperationRequest(operation="insert", data={"table_name": "t", "records": [{"a": 1, "b": 2}]})
    )
    b = request_digest(
        OperationRequest(operation="insert", data={"records": [{"b": 2, "a": 1}], "table_name": "t"})
    )
    c = request_digest(
        OperationRequest(operation="insert", data={"table_name": "t", "records": [{"a": 1, "b": 3}]})
    )
    assert a == b != c


def test_cache_keys_differ_by_every_part() -> None:
    base = cache_key("SELECT 1", [], None)
    assert base == cache_key("SELECT 1", [], None)
    assert base != cache_key("SELECT 1", [1], None)
    assert base != cache_key("SELECT 2", [], None)


async def test_memory_cache_expires_and_evicts_the_least_recent() -> None:
    now = [1000.0]
    cache = MemoryResultCache(capacity=2, clock=lambda: now[0])
    await cache.put("db", "a", {"v": 1}, ttl=60)
    await cache.put("db", "b", {"v": 2}, ttl=60)
    assert await cache.get("db", "a") == {"v": 1}  # a is now the most recent
    await cache.put("db", "c", {"v": 3}, ttl=60)
    assert await cache.get("db", "b") is None
    assert await cache.get("db", "a") == {"v": 1}
    assert await cache.get("other", "a") is None  # entries are per connector
    await cache.put("db", "short", {"v": 4}, ttl=1)
    assert await cache.get("db", "short") == {"v": 4}
    now[0] += 1.0
    assert await cache.get("db", "short") is None
