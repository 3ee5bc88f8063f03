"""Validating untrusted request pieces: a typed INVALID_REQUEST on failure, never an echoed value.

`unencodable_path` finds text that cannot be encoded as UTF-8 (a lone surrogate such as `\\ud800`, which
`json.loads` accepts from a `\\u` escape): stored or echoed, such text breaks every later JSON encode
(`connector.list` for every caller), so the edges refuse it before anything keeps it.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scf.schemas.connection import describe_validation_error
from scf.schemas.errors import ErrorCode, PermanentError

M = TypeVar("M", bound=BaseModel)

#: A `\u` escape of a UTF-16 surrogate (D800-DFFF): the only way valid UTF-8 JSON yields a lone one.
#: One fixed-width token, no repetition: a linear scan, so it can run on every raw body as a prefilter.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: How much of a key path an error names (keys are names, not values, but may be hostile and long).
MAX_SHOWN_PATH = 120


def parse_model(model: type[M], body: Any, where: str = "request") -> M:
    """Validate `body` (a request, or its `data` or `parameters`) or raise `permanent` INVALID_REQUEST.

    The message names each bad field and never echoes an input value (which may be a secret).
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise PermanentError(
            f"invalid {where}: {describe_validation_error(exc)}", code=ErrorCode.INVALID_REQUEST
        ) from None


def unencodable_path(value: Any) -> str | None:
    """The key path of the first key or string that is not encodable as UTF-8, else None.

    Iterative (a hostile body must not exhaust the stack) and linear: one `encode` per string.
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return path or "(body)"
        elif isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{_shown(key)}" if path else _shown(key)
                if isinstance(key, str) and not _encodable(key):
                    return where
                stack.append((child, where))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def refuse_unencodable(raw: bytes, body: Any, where: str = "request body") -> None:
    """Raise `permanent` INVALID_REQUEST if the JSON `body` parsed from `raw` holds unencodable text.

    The walk runs only when `raw` has a surrogate escape at all, so ordinary requests pay one scan.
    """
    if not SURROGATE_ESCAPE.search(raw):
        return
    if _all_encodable(body):
        return
    path = unencodable_path(body)  # only now: naming the place costs a string per step
    if path is not None:
        raise PermanentError(
            f"{where} holds text that is not valid Unicode (a lone UTF-16 surrogate) at "
            + path[:MAX_SHOWN_PATH],
            code=ErrorCode.INVALID_REQUEST,
        )


def _all_encodable(value: Any) -> bool:
    """The fast walk: containers pushed, strings checked in place, no path kept."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return False
            continue
        children = item.items() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, tuple):  # a dict's (key, value)
                key, child = child
                if isinstance(key, str) and not _encodable(key):
                    return False
            if isinstance(child, str):
                if not _encodable(child):
                    return False
            elif isinstance(child, dict | list):
                stack.append(child)
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(key: Any) -> str:
    """A key as an error may name it: printable, surrogates escaped."""
    text = key if isinstance(key, str) else str(key)
    return text.encode("ascii", "backslashreplace").decode("ascii")[:MAX_SHOWN_PATH]
