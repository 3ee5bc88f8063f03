"""Pure CSV helpers, record side: rows under limits, the header, and per-column type inference."""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from scf.connectors.parsing.csv_text import CsvDialect, CsvLimits, limit_exceeded
from scf.schemas.errors import ErrorCode, PermanentError

SAMPLE_VALUE_CHARS = 40

ColumnType = Literal["int", "float", "bool", "str"]
ValueKind = Literal["blank", "int", "float", "bool", "str"]

# Leading zeros stay text ("007" is an identifier, not 7); over-long digit runs stay text too.
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]{0,99})")
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "false": False}
_FITS: dict[ColumnType, frozenset[ValueKind]] = {
    "int": frozenset({"blank", "int"}),
    "float": frozenset({"blank", "int", "float"}),
    "bool": frozenset({"blank", "bool"}),
    "str": frozenset({"blank", "int", "float", "bool", "str"}),
}


# --- records ----------------------------------------------------------------------------------------


class MalformedCsvError(PermanentError):
    """The csv reader gave up (unmatched quote, stray quote); `line` is where the bad record starts."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"malformed CSV at line {line}: {reason}", code=ErrorCode.INVALID_DATA)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Row:
    line: int  # physical line where the record starts (quoted newlines make records span lines)
    fields: list[str]


def read_rows(text: str, dialect: CsvDialect, limits: CsvLimits) -> Iterator[Row]:
    """Yield every non-blank record, enforcing max_columns and max_field_size.

    The process-wide `csv.field_size_limit` is left at Python's default (131072, the ceiling of
    max_field_size) because parsing runs in worker threads; smaller limits are checked here.
    """
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        strict=True,
    )
    end_line = 0
    while True:
        start = end_line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise limit_exceeded(
                    "max_field_size", limits.max_field_size, f"a field at line {start}"
                ) from None
            raise MalformedCsvError(start, _reason(exc)) from None
        end_line = reader.line_num
        if not fields:
            continue
        if len(fields) > limits.max_columns:
            raise limit_exceeded("max_columns", limits.max_columns, f"{len(fields)} fields at line {start}")
        if any(len(value) > limits.max_field_size for value in fields):
            raise limit_exceeded("max_field_size", limits.max_field_size, f"a field at line {start}")
        yield Row(start, fields)


def _reason(exc: csv.Error) -> str:
    text = str(exc)
    return "unmatched quote" if text == "unexpected end of data" else text


@dataclass
class Table:
    """A header (read or generated) and an iterator over the data rows, which enforces max_rows."""

    header: list[str] | None
    header_line: int
    width: int
    rows: Iterator[Row]


def open_table(text: str, dialect: CsvDialect, limits: CsvLimits, *, has_headers: bool) -> Table:
    rows = read_rows(text, dialect, limits)
    first = next(rows, None)
    if first is None:
        return Table(None, 0, 0, iter(()))
    if has_headers:
        return Table(first.fields, first.line, len(first.fields), _capped(rows, limits.max_rows))
    return Table(None, 0, len(first.fields), _capped(itertools.chain([first], rows), limits.max_rows))


def _capped(rows: Iterator[Row], max_rows: int) -> Iterator[Row]:
    for count, row in enumerate(rows, start=1):
        if count > max_rows:
            raise limit_exceeded("max_rows", max_rows, f"data row {count} at line {row.line}")
        yield row


def column_names(header: list[str] | None, width: int) -> list[str]:
    """Unique, non-empty keys: blank headers become column_<n>, repeats get _2, _3 ..."""
    if header is None:
        return [f"column_{i}" for i in range(1, width + 1)]
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        base = raw.strip() or f"column_{i}"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


def header_problems(header: list[str]) -> list[tuple[Literal["empty_header", "duplicate_header"], str]]:
    problems: list[tuple[Literal["empty_header", "duplicate_header"], str]] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        name = raw.strip()
        if not name:
            problems.append(("empty_header", f"column {i} has an empty header"))
        elif name in seen:
            problems.append(("duplicate_header", f"header {name!r} repeats at column {i}"))
        seen.add(name)
    return problems


# --- types ------------------------------------------------------------------------------------------


def classify_value(value: str) -> ValueKind:
    """What a raw field looks like: blank (empty or whitespace) is null; surrounding whitespace is ignored."""
    stripped = value.strip()
    if not stripped:
        return "blank"
    if _INT.fullmatch(stripped):
        return "int"
    if _FLOAT.fullmatch(stripped) and math.isfinite(float(stripped)):
        return "float"
    if stripped.lower() in _BOOLS:
        return "bool"
    return "str"


def coerce_value(value: str, column_type: ColumnType) -> Any:
    """Convert a raw field to its column's type; only call with the type inferred over that column."""
    stripped = value.strip()
    if not stripped:
        return None
    if column_type == "int":
        return int(stripped)
    if column_type == "float":
        return float(stripped)
    if column_type == "bool":
        return _BOOLS[stripped.lower()]
    return value


@dataclass
class ColumnProfile:
    """Counts of each value kind in one column, plus the first `keep` (line, value) samples per kind.

    `widened_type` is what `ingest` coerces to (any conflict falls back to str, so coercion never
    fails); `dominant_type` is what `validate` expects (the kind most values share), so the few
    values that break it can be reported as type mismatches.
    """

    keep: int = 0
    counts: dict[ValueKind, int] = field(default_factory=dict)
    samples: dict[ValueKind, list[tuple[int, str]]] = field(default_factory=dict)

    def observe(self, value: str, line: int) -> None:
        if self.keep == 0 and self.counts.get("str"):  # already text: only nulls still matter
            kind: ValueKind = "blank" if not value.strip() else "str"
        else:
            kind = classify_value(value)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.keep and kind != "blank":
            kept = self.samples.setdefault(kind, [])
            if len(kept) < self.keep:
                kept.append((line, value[:SAMPLE_VALUE_CHARS]))

    @property
    def nullable(self) -> bool:
        return self.counts.get("blank", 0) > 0

    @property
    def widened_type(self) -> ColumnType:
        kinds = {k for k, n in self.counts.items() if n and k != "blank"}
        if kinds == {"int"}:
            return "int"
        if kinds and kinds <= {"int", "float"}:
            return "float"
        if kinds == {"bool"}:
            return "bool"
        return "str"

    @property
    def dominant_type(self) -> ColumnType:
        widened = self.widened_type
        if widened != "str":
            return widened
        total = sum(n for k, n in self.counts.items() if k != "blank")
        numeric = self.counts.get("int", 0) + self.counts.get("float", 0)
        if numeric * 2 > total:
            return "float" if self.counts.get("float") else "int"
        if self.counts.get("bool", 0) * 2 > total:
            return "bool"
        return "str"

    def mismatches(self) -> tuple[int, list[tuple[int, str]]]:
        """(how many values break the dominant type, the kept samples of them)."""
        fits = _FITS[self.dominant_type]
        bad = [k for k in self.counts if k not in fits]
        samples = [s for k in bad for s in self.samples.get(k, [])]
        return sum(self.counts[k] for k in bad), samples
