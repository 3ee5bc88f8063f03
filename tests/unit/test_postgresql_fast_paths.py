"""The insert path's shortcuts accept exactly what the checked paths accept, and give the same values:
regex-free numeric and timestamp coercion, one-group records, and the column-oriented insert shape."""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.postgresql.catalog import ColumnInfo, TableInfo
from scf.connectors.postgresql.coercion import (
    CoercionError,
    _to_decimal,
    _to_decimal_fast,
    _to_timestamp,
    _to_timestamp_fast,
    _to_timestamptz,
    _to_timestamptz_fast,
    coerce_column,
)
from scf.connectors.postgresql.requests import InsertData
from scf.connectors.postgresql.session import backstop_ms
from scf.connectors.postgresql.sql import group_by_columns
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.validation import parse_model as parse

NUMBERS: list[Any] = [
    "1.25",
    "-0.5",
    "+.5e-3",
    "5.",
    ".5",
    "1e5",
    "1E+05",
    " 1.5 ",
    "\t2\n",
    "0",
    "-0",
    "00012.3400",
    "NaN",
    "nan",
    "-nan",
    "Infinity",
    "-inf",
    "+Inf",
    "sNaN",
    "nan123",
    "1_000",
    "\u0661\u0662",
    "1,5",
    "0x10",
    "",
    " ",
    "1e",
    "e5",
    ".",
    "--1",
    "1.2.3",
    "\uff11\uff12",  # fullwidth digits
    12,
    -3,
    2.5,
    True,
    None,
    [1],
    {"a": 1},
]
TIMES: list[Any] = [
    "2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00z",
    "2026-01-01T10:00:00+02:00",
    "2026-01-01T10:00:00",
    "2026-01-01 10:00:00.123456",
    "2026-01-01",
    " 2026-01-01T10:00:00 ",
    "2026-01-01T10:00:00 Z",
    "20260101T100000",
    "2026-13-01",
    "2026-01-01T25:00",
    "yesterday",
    "",
    "Z",
    5,
    None,
    True,
]


def outcome(coerce: Any, value: Any) -> Any:
    try:
        return ("ok", coerce(value))
    except CoercionError as exc:
        return ("refused", exc.expected)
    except (TypeError, AttributeError) as exc:  # None and non-str values never reach a coercer
        return ("raised", type(exc).__name__)


@pytest.mark.parametrize("value", NUMBERS)
def test_numeric_fast_path_agrees_with_the_checked_path(value: Any) -> None:
    fast, checked = outcome(_to_decimal_fast, value), outcome(_to_decimal, value)
    assert fast == checked or (fast[0] == checked[0] == "ok" and str(fast[1]) == str(checked[1]))


@pytest.mark.parametrize("value", TIMES)
@pytest.mark.parametrize(
    ("fast", "checked"), [(_to_timestamptz_fast, _to_timestamptz), (_to_timestamp_fast, _to_timestamp)]
)
def test_timestamp_fast_paths_agree_with_the_checked_paths(value: Any, fast: Any, checked: Any) -> None:
    assert outcome(fast, value) == outcome(checked, value)


def test_the_fast_paths_do_refuse() -> None:
    """The agreement above is not two paths accepting everything."""
    assert outcome(_to_decimal_fast, "1_000")[0] == "refused"
    assert outcome(_to_decimal_fast, "sNaN")[0] == "refused"
    assert outcome(_to_timestamptz_fast, "yesterday")[0] == "refused"
    assert outcome(_to_decimal_fast, " 1.5 ") == ("ok", _to_decimal("1.5"))


def test_a_column_names_its_first_bad_value_after_the_fast_pass() -> None:
    where = ["data.rows[0][1]", "data.rows[1][1]", "data.rows[2][1]", "data.rows[3][1]"]
    with pytest.raises(PermanentError) as caught:
        coerce_column(["1.5", None, "1_0", "x"], "numeric", where.__getitem__)
    assert (caught.value.code, caught.value.message) == (
        ErrorCode.INVALID_DATA,
        "data.rows[2][1]: expected a decimal number",
    )
    assert coerce_column(["1.5", None, 2], "numeric", str) == [_to_decimal("1.5"), None, _to_decimal("2")]


def _table() -> TableInfo:
    names = ["id", "a", "b"]
    return TableInfo("public", "t", {n: ColumnInfo(n, "int4", "integer", True) for n in names})


def test_records_with_one_key_set_make_one_group_in_table_order() -> None:
    records: list[tuple[int, dict[str, Any]]] = [(0, {"b": 1, "id": 2}), (1, {"id": 3, "b": 4})]
    assert group_by_columns(records, _table()) == [(("id", "b"), records)]


def test_records_with_other_key_sets_are_still_split() -> None:
    records: list[tuple[int, dict[str, Any]]] = [(0, {"id": 1}), (1, {"id": 2, "a": 1}), (2, {"id": 3})]
    groups = group_by_columns(records, _table())
    assert [(cols, [i for i, _ in rows]) for cols, rows in groups] == [(("id",), [0, 2]), (("id", "a"), [1])]


def test_insert_data_column_names() -> None:
    records = parse(InsertData, {"records": [{"b": 1, "a": 2}, {"a": 1, "b": 2}]}, "data")
    mixed = parse(InsertData, {"records": [{"b": 1}, {"a": 1, "c": 2}]}, "data")
    columns = parse(InsertData, {"columns": ["z", "a"], "rows": [[1, 2]]}, "data")
    assert records.column_names() == ["a", "b"] and records.row_count == 2
    assert mixed.column_names() == ["a", "b", "c"]
    assert columns.column_names() == ["z", "a"] and columns.row_count == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"columns": ["a", "a"], "rows": [[1, 2]]}, "twice"),
        ({"columns": ["a", "b"], "rows": [[1, 2], [3]]}, "rows[1] has 1 values for 2"),
        ({"columns": ["a"], "rows": [[1]], "records": [{"a": 1}]}, "not both"),
        ({"columns": ["a"]}, "columns and rows"),
        ({"rows": [[1]]}, "columns and rows"),
        ({"columns": ["a"] * 1601, "rows": [[1] * 1601]}, "columns"),
    ],
)
def test_malformed_column_oriented_data(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(PermanentError) as caught:
        parse(InsertData, body, "data")
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert problem in caught.value.message, caught.value.message


def test_the_statement_timeout_backstop_is_the_time_left_rounded_up_to_a_power_of_two() -> None:
    assert [backstop_ms(t) for t in (0.001, 1, 1.5, 2, 3, 29.99, 30, 32, 33, 1500)] == [
        1000,
        1000,
        2000,
        2000,
        4000,
        32000,
        32000,
        32000,
        64000,
        2048000,
    ]
