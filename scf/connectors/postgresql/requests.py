"""The shapes of `data` and `parameters` for each PostgreSQL operation, validated before any I/O.

A request that does not fit is a `permanent` INVALID_REQUEST naming the field, never a driver error.
Unknown keys are refused so that a misspelt option (`conflict_column`) is not silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scf.connectors.operation_table import Alias, PageParameters, Strict
from scf.schemas.errors import ErrorCode, PermanentError

Operator = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null", "like"]
OnConflict = Literal["error", "nothing", "update"]

MAX_BATCH_SIZE = 10_000
_VALUELESS: frozenset[str] = frozenset({"is_null", "is_not_null"})
_LISTS: frozenset[str] = frozenset({"in", "not_in"})


MAX_CACHE_TTL = 86_400
MAX_PAGE_KEY_COLUMNS = 8
MAX_TRANSACTION_STEPS = 1_000


class QueryParameters(PageParameters):
    """A read. `page_size` pages the result (keyset on `page_key` columns, else by offset);
    `cache_ttl` keeps the reply in the fleet's cache for that many seconds."""

    query: str = Field(min_length=1, max_length=1_000_000)
    query_params: list[Any] = Field(default_factory=list)
    page_key: list[str] | None = Field(default=None, min_length=1, max_length=MAX_PAGE_KEY_COLUMNS)
    cache_ttl: int | None = Field(default=None, ge=1, le=MAX_CACHE_TTL)

    @model_validator(mode="after")
    def _paging_options_fit(self) -> QueryParameters:
        if self.page_key is not None and self.page_size is None:
            raise ValueError("page_key needs page_size")
        if self.page_key is not None and len(set(self.page_key)) != len(self.page_key):
            raise ValueError("page_key names a column twice")
        return self


#: PostgreSQL's own limit on a table's columns.
MAX_COLUMNS = 1_600


#: The table an operation writes (`parameters.table`): its shape is checked by `check_names`, which
#: refuses a bad one as INVALID_IDENTIFIER before any I/O.
Table = str


class InsertData(Strict):
    """Rows to insert, as `records` (one JSON object per row; a key a record lacks takes the column's
    DEFAULT) or column-oriented: `columns` (names) and `rows` (one array per row, a value for each
    column, in that order). The column-oriented form skips a dict per row on both sides and is checked
    whole: names unique, every row exactly as long as `columns`."""

    records: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    columns: list[str] | None = Field(default=None, min_length=1, max_length=MAX_COLUMNS)
    rows: list[list[Any]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_form(self) -> InsertData:
        if self.records is not None:
            if self.columns is not None or self.rows is not None:
                raise ValueError("give records, or columns and rows, not both")
            return self
        if self.columns is None or self.rows is None:
            raise ValueError("give records (a list of objects), or columns and rows (column-oriented)")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("columns names a column twice")
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"rows[{index}] has {len(row)} values for {width} columns")
        return self

    @property
    def row_count(self) -> int:
        return len(self.records) if self.records is not None else len(self.rows or ())

    def column_names(self) -> list[str]:
        """Every column the insert names (sorted for records: the union of their keys)."""
        if self.columns is not None:
            return list(self.columns)
        records = self.records or []
        first = records[0].keys()
        if all(r.keys() == first for r in records):  # the common case: one key set, C-speed compares
            return sorted(first)
        return sorted({k for record in records for k in record})


class InsertParameters(Strict):
    """The table, rows per statement and what to do with rows that clash with a unique key."""

    table: Table
    batch_size: int = Field(default=1000, ge=1, le=MAX_BATCH_SIZE)
    on_conflict: OnConflict = "error"
    conflict_columns: list[str] | None = Field(default=None, min_length=1)


class Filter(Strict):
    """One `column operator value` condition; conditions of a filter list are joined with AND."""

    column: str
    operator: Operator = "="
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Filter:
        if self.operator in _VALUELESS:
            if self.value is not None:
                raise ValueError(f"operator {self.operator} takes no value")
        elif self.operator in _LISTS:
            if not isinstance(self.value, list):
                raise ValueError(f"operator {self.operator} needs a list value")
        elif self.value is None:
            raise ValueError(f"operator {self.operator} needs a value (use is_null to match NULL)")
        elif self.operator == "like" and not isinstance(self.value, str):
            raise ValueError("operator like needs a string pattern")
        return self


class UpdateData(Strict):
    """The new values of the matching rows' columns."""

    values: dict[str, Any] = Field(min_length=1)


class WriteParameters(Strict):
    """Which rows of `table` an update or delete changes: every `filters` condition holds (AND).

    `allow_all` must be true to change rows without a narrowing filter (every row of the table)."""

    table: Table
    filters: list[Filter] = Field(default_factory=list, max_length=MAX_COLUMNS)
    allow_all: bool = False


class TransactionStep(Strict):
    """One write of a `transaction`: the same `data` and `parameters` as the operation on its own."""

    operation: Literal["insert", "update", "delete"]
    data: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)


class TransactionData(Strict):
    steps: list[TransactionStep] = Field(min_length=1, max_length=MAX_TRANSACTION_STEPS)


#: Operators that keep only rows whose column matches concrete values: a filter narrows only through one.
#: `!=`, `not_in`, `is_null` and `is_not_null` can match every row (`id is_not_null`), so they do not
#: count; ranges do (whether `id > -1` keeps every row depends on the data, which is the caller's call).
_NARROWING: frozenset[str] = frozenset({"=", "<", "<=", ">", ">=", "in"})
_LIKE_WILDCARDS = ("%", "_", "\\")


def narrows(flt: Filter) -> bool:
    """Can this condition leave rows out? Decided conservatively from its operator and value alone."""
    if flt.operator == "like":  # a pattern with a literal start narrows; `%...` or `_%` may match all
        return isinstance(flt.value, str) and flt.value != "" and not flt.value.startswith(_LIKE_WILDCARDS)
    return flt.operator in _NARROWING


def require_filters(parameters: WriteParameters, operation: str) -> None:
    """Refuse a change that may reach every row unless the caller said so explicitly (`allow_all`).

    Conditions are joined with AND, so one narrowing condition is enough; none means "all rows".
    """
    if parameters.allow_all or any(narrows(f) for f in parameters.filters):
        return
    if not parameters.filters:
        reason = "without filters"
    else:
        reason = "with filters that can match every row (give one =, <, <=, >, >=, in or like 'prefix%')"
    raise PermanentError(
        f"{operation} {reason} would change every row of {parameters.table!r}; "
        "give parameters.filters that narrow the rows or set parameters.allow_all to true",
        code=ErrorCode.INVALID_REQUEST,
    )


# --- where fields came from before the one request convention (docs/postgresql.md) -------------------

#: The spec's insert names its table `data.table_name`: accepted as it is, not deprecated.
INSERT_ALIASES = (Alias("data", "table_name", "parameters", "table", deprecated=False),)
#: update and delete named the table and the filters in `data`.
FILTER_ALIASES = (
    Alias("data", "table_name", "parameters", "table"),
    Alias("data", "filters", "parameters", "filters"),
)
#: `limit` was one capped reply; it is the first page now.
QUERY_ALIASES = (Alias("parameters", "limit", "parameters", "page_size"),)
