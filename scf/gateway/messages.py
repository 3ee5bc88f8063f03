"""Validation messages a caller can act on: `invalid request: body.data.x: <what is wrong>`.

Pydantic's locations are tuples (`("body", "grants", 0)`) and its messages carry the exception class
("Value error, ..."); joined naively they read `invalid request: : Value error, ...` or `16: JSON decode
error`. Input values are never echoed: a rejected body may carry a password.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: At most this many problems are listed in one message.
MAX_PROBLEMS = 10
#: What pydantic puts before the text of an exception a validator raised.
_EXCEPTION_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "grants", 0)` → `body.grants.0`; an empty location is the whole request."""
    return ".".join(str(part) for part in loc) or "request"


def problem_text(message: str) -> str:
    """The message without the exception class pydantic names, also where a validator nested one."""
    for prefix in _EXCEPTION_PREFIXES:
        message = message.removeprefix(prefix).replace(": " + prefix, ": ")
    return message


def json_position(doc: str | bytes, pos: int) -> tuple[int, int]:
    """The 1-based line and column of character `pos` of `doc` (as `json.JSONDecodeError` counts them)."""
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else doc
    line = text.count("\n", 0, pos) + 1
    return line, pos - text.rfind("\n", 0, pos)


def invalid_json(doc: str | bytes, pos: int, reason: str) -> str:
    line, column = json_position(doc, pos)
    return f"invalid JSON at line {line} column {column}: {reason}"


def describe(errors: Iterable[Mapping[str, Any]], body: Any = None) -> str:
    """One line naming each problem (up to MAX_PROBLEMS): `invalid request: body.port: ...; query.x: ...`."""
    problems: list[str] = []
    for error in errors:
        if len(problems) == MAX_PROBLEMS:
            problems.append("…")
            break
        if error.get("type") == "json_invalid" and isinstance(body, str | bytes):
            loc = error.get("loc", ())
            pos = loc[-1] if loc and isinstance(loc[-1], int) else 0
            reason = str((error.get("ctx") or {}).get("error", "JSON decode error"))
            return invalid_json(body, pos, reason)
        problems.append(f"{field_path(error.get('loc', ()))}: {problem_text(str(error.get('msg', '')))}")
    return "invalid request: " + "; ".join(problems)
