"""Where the records are in a JSON reply: `records_path` ("$" for the root, "data.items", "$.results").

A path is dotted names; a numeric segment indexes a list. The records must be a list of objects;
anything else is a `permanent` INVALID_DATA error that says what was found instead.
"""

from __future__ import annotations

from typing import Any

from scf.schemas.errors import ErrorCode, PermanentError

MAX_SEGMENTS = 32
_MISSING = object()


def path_segments(path: str) -> tuple[str, ...]:
    """ "$" -> (); "$.a.b" and "a.b" -> ("a", "b"); empty segments are an INVALID_REQUEST error."""
    text = path.strip()
    if text in ("$", ""):
        return ()
    text = text.removeprefix("$.")
    segments = tuple(text.split("."))
    if any(not s for s in segments) or len(segments) > MAX_SEGMENTS:
        raise PermanentError(
            f"path {path[:80]!r} is not a dotted path like data.items (or $ for the whole reply)",
            code=ErrorCode.INVALID_REQUEST,
        )
    return segments


def value_at(document: Any, path: str) -> Any:
    """The value at `path`, or None when any segment is missing."""
    found = _walk(document, path_segments(path))
    return None if found is _MISSING else found


def _walk(document: Any, segments: tuple[str, ...]) -> Any:
    current = document
    for segment in segments:
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return _MISSING
    return current


def describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value)[:10])
        return f"an object (keys: {keys or 'none'})"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return "null" if value is None else f"a {type(value).__name__}"


def records_at(document: Any, path: str) -> list[dict[str, Any]]:
    """The records at `path`: a list of objects, else `permanent` INVALID_DATA."""
    found = _walk(document, path_segments(path))
    if found is _MISSING:
        raise PermanentError(
            f"records_path {path!r} is not in the reply, which is {describe(document)}",
            code=ErrorCode.INVALID_DATA,
        )
    if not isinstance(found, list):
        raise PermanentError(
            f"records_path {path!r} holds {describe(found)}, not a list of records",
            code=ErrorCode.INVALID_DATA,
        )
    for position, record in enumerate(found):
        if not isinstance(record, dict):
            raise PermanentError(
                f"records_path {path!r}: item {position} is {describe(record)}, not an object",
                code=ErrorCode.INVALID_DATA,
            )
    return found


def fields_of(records: list[dict[str, Any]], sample: int = 100) -> list[str]:
    """The field names of the first `sample` records, in first-seen order."""
    names: dict[str, None] = {}
    for record in records[:sample]:
        names.update(dict.fromkeys(str(k) for k in record))
    return list(names)
