"""Values in and out: JSON values coerced to what asyncpg binds for a type, and rows made JSON-safe.

Callers send JSON, so a date arrives as "2024-01-01" while asyncpg binds only `datetime.date`. The server
says which type each placeholder has (`PreparedStatement.get_parameters()`); `coerce_param` converts
the JSON value to that type. Errors name the place and the expected type, never the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from scf.schemas.errors import ErrorCode, PermanentError


class CoercionError(ValueError):
    """A value does not fit a type; `expected` says what would have."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


@dataclass(frozen=True)
class ParamType:
    """A placeholder's type as the server resolved it: `int4`, or `int4[]` with element `int4`."""

    name: str
    element: str | None = None

    @classmethod
    def parse(cls, name: str) -> ParamType:
        return cls(name, name[:-2]) if name.endswith("[]") else cls(name)


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(
    r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|infinity|inf)", re.IGNORECASE
)
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError("an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise CoercionError("an integer")


def _integer(bits: int) -> Callable[[Any], int]:
    """An integer coercer that also checks the range, so the error can name the field."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def coerce(value: Any) -> int:
        if type(value) is int and low <= value <= high:  # the common case, without the checks below
            return value
        number = _to_int(value)
        if not low <= number <= high:
            raise CoercionError(f"an integer between {low} and {high}")
        return number

    return coerce


def _number_text(value: Any, expected: str) -> str:
    if isinstance(value, bool):
        raise CoercionError(expected)
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return value.strip()
    raise CoercionError(expected)


def _to_float(value: Any) -> float:
    if isinstance(value, float):
        return value
    return float(_number_text(value, "a number"))


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(_number_text(value, "a decimal number"))
    except InvalidOperation:
        raise CoercionError("a decimal number") from None


def _to_decimal_fast(value: Any) -> Decimal:
    """`_to_decimal` for the common case, a plain finite ASCII number in a string, without the regex:
    what `Decimal` parses finite, in ASCII and without `_` is exactly what `_NUMBER` accepts (NaN and
    infinities, other digits and underscores take the checked path)."""
    if type(value) is str:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise CoercionError("a decimal number") from None
        if number.is_finite() and value.isascii() and "_" not in value:
            return number
    return _to_decimal(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise CoercionError("a boolean")


def _parse_datetime(text: str, expected: str) -> datetime:
    text = text.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CoercionError(expected) from None


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            # like PostgreSQL's '2024-01-01T10:00:00Z'::date: a full timestamp keeps its date part
            return _parse_datetime(value, "an ISO 8601 date (YYYY-MM-DD)").date()
    raise CoercionError("an ISO 8601 date (YYYY-MM-DD)")


def _to_datetime(value: Any, expected: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        return _parse_datetime(value, expected)
    raise CoercionError(expected)


def _to_timestamptz(value: Any) -> datetime:
    """A timestamp without an offset is taken as UTC."""
    parsed = _to_datetime(value, "an ISO 8601 timestamp")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _to_timestamptz_fast(value: Any) -> datetime:
    """`_to_timestamptz` without the detours for an ISO 8601 string `fromisoformat` reads as it is
    (Python 3.11 reads a trailing `Z` itself); anything else takes the checked path."""
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _to_timestamptz(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return _to_timestamptz(value)


def _to_timestamp_fast(value: Any) -> datetime:
    if type(value) is str:
        try:
            return datetime.fromisoformat(value).replace(tzinfo=None)
        except ValueError:
            pass
    return _to_timestamp(value)


def _to_timestamp(value: Any) -> datetime:
    """An offset is dropped, as PostgreSQL itself ignores it for `timestamp without time zone`."""
    return _to_datetime(value, "an ISO 8601 timestamp").replace(tzinfo=None)


def _to_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        text = value.strip()
        text = text[:-1] + "+00:00" if text[-1:] in ("z", "Z") else text
        try:
            return time.fromisoformat(text)
        except ValueError:
            pass
    raise CoercionError("an ISO 8601 time (HH:MM[:SS])")


def _to_timetz(value: Any) -> time:
    parsed = _to_time(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _to_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    raise CoercionError("a UUID")


def json_text(value: Any) -> str:
    """A `str` is taken as JSON text already; any other value is serialised."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), allow_nan=False)


def _to_json(value: Any) -> str:
    try:
        return json_text(value)
    except (TypeError, ValueError):
        raise CoercionError("a JSON value") from None


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _to_json(value)
    raise CoercionError("text")


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise CoercionError("base64-encoded bytes")


_COERCERS: dict[str, Callable[[Any], Any]] = {
    "int2": _integer(16),
    "int4": _integer(32),
    "int8": _integer(64),
    "float4": _to_float,
    "float8": _to_float,
    "numeric": _to_decimal_fast,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp_fast,
    "timestamptz": _to_timestamptz_fast,
    "time": _to_time,
    "timetz": _to_timetz,
    "uuid": _to_uuid,
    "json": _to_json,
    "jsonb": _to_json,
    "text": _to_text,
    "varchar": _to_text,
    "bpchar": _to_text,
    "name": _to_text,
    "bytea": _to_bytes,
}

#: Built-in types with a coercer; columns of any other type are bound as text and cast by the server.
NATIVE_TYPES = frozenset(_COERCERS)


def coerce_value(value: Any, type_name: str) -> Any:
    """Convert one JSON value for a scalar type; unknown types pass through to asyncpg unchanged."""
    if value is None:
        return None
    coercer = _COERCERS.get(type_name)
    return value if coercer is None else coercer(value)


def coerce_param(value: Any, param: ParamType, where: str) -> Any:
    """Convert a value for one placeholder; raise `permanent` INVALID_DATA naming `where` on failure."""
    try:
        if param.element is None or value is None:
            return coerce_value(value, param.name)
        if not isinstance(value, list | tuple):
            raise CoercionError(f"a list of {param.element}")
        return _coerce_elements(value, param.element)
    except CoercionError as exc:
        raise PermanentError(f"{where}: expected {exc.expected}", code=ErrorCode.INVALID_DATA) from None


def coerce_column(values: Sequence[Any], type_name: str, where: Callable[[int], str]) -> list[Any]:
    """Convert one column of a batch; the error names the first value that does not fit (`where(i)`)."""
    coercer = _COERCERS.get(type_name)
    if coercer is None:
        return list(values)
    try:
        return [None if value is None else coercer(value) for value in values]
    except CoercionError:
        pass
    for index, value in enumerate(values):  # again, one by one, to name the first value that fails
        try:
            coerce_value(value, type_name)
        except CoercionError as exc:
            raise PermanentError(
                f"{where(index)}: expected {exc.expected}", code=ErrorCode.INVALID_DATA
            ) from None
    raise AssertionError("a coercer failed once and not again")  # pragma: no cover - coercers are pure


def _coerce_elements(values: list[Any] | tuple[Any, ...], element: str) -> list[Any]:
    return [_coerce_elements(v, element) if isinstance(v, list) else coerce_value(v, element) for v in values]


def coerce_params(values: list[Any], params: tuple[ParamType, ...], where: str) -> list[Any]:
    """Coerce positional values (`$1`..`$n`), checking that their number matches the placeholders."""
    if len(values) != len(params):
        raise PermanentError(
            f"{where}: the statement has {len(params)} placeholder(s) but {len(values)} value(s) were given",
            code=ErrorCode.INVALID_REQUEST,
        )
    return [coerce_param(v, p, f"{where}[{i}]") for i, (v, p) in enumerate(zip(values, params, strict=True))]


# --- text form, for columns whose type the server converts (enums, arrays, intervals, domains, ...) ---


def pg_text(value: Any) -> str | None:
    """The PostgreSQL text form of a JSON value: lists become array literals, objects JSON text."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return _array_literal(value)
    try:
        return _to_text(value)
    except CoercionError:
        return str(value)


def _array_literal(values: list[Any] | tuple[Any, ...]) -> str:
    parts = []
    for item in values:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list | tuple):
            parts.append(_array_literal(item))
        else:
            text = pg_text(item) or ""
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


# --- out: rows to JSON ----------------------------------------------------------------------------


def to_json_safe(value: Any) -> Any:
    """Convert a value asyncpg decoded into something `json.dumps` accepts without loss of meaning."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, Mapping | asyncpg.Record):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, asyncpg.Range):
        return _range_json(value)
    return str(value)  # Decimal, UUID, timedelta, ip addresses, bit strings: their canonical text


def _range_json(value: asyncpg.Range[Any]) -> dict[str, Any]:
    return {
        "lower": to_json_safe(value.lower),
        "upper": to_json_safe(value.upper),
        "lower_inc": value.lower_inc,
        "upper_inc": value.upper_inc,
        "empty": value.isempty,
    }
