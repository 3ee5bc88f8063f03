"""Strict JSON for request bodies: UTF-8 only, no lone surrogates, at most MAX_JSON_DEPTH levels.

Python's `json.loads(bytes)` decodes with `surrogatepass` and turns `"\\ud800"` into a str that nothing
downstream can encode (it broke `GET /connectors` for every caller), so bodies are parsed here instead.
Large bodies are parsed in a worker thread, so the event loop keeps answering probes meanwhile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from itertools import accumulate, repeat
from operator import sub
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from scf.gateway.messages import invalid_json
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError

#: The dispatcher's limit on an AMQP request body (`scf.dispatcher.routing.MAX_JSON_DEPTH`).
MAX_JSON_DEPTH = 64
#: Bodies above this size are parsed off the event loop.
THREAD_PARSE_BYTES = 256 * 1024
# A \uD800-\uDFFF escape; linear (no nesting, no backtracking). Only then is a walk for lone ones needed.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A JSON string (the body already parsed, so each is well formed); possessive: one pass, no backtracking.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')
_OPENS_AS_2_CLOSES_AS_0 = bytes.maketrans(b"[{]}", bytes([2, 2, 0, 0]))
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


class BodyRefusedHTTPError(HTTPException):
    """A typed refusal raised while FastAPI reads the body (it lets HTTPException through untouched)."""

    def __init__(self, error: ConnectorError, status_code: int) -> None:
        super().__init__(status_code=status_code, detail=error.message)
        self.error = error


def parse_body(raw: bytes) -> Any:
    """The JSON value of `raw`, or `BodyRefusedHTTPError` (400 malformed JSON, invalid UTF-8 or too deep;
    422 lone surrogate). Malformed JSON is named by line and column: `invalid JSON at line 1 column 7: ...`.
    """
    try:
        text = raw.decode("utf-8")  # strict: UTF-8-encoded surrogates and stray bytes are refused here
    except UnicodeDecodeError:
        raise _refused("request body is not valid UTF-8", ErrorCode.INVALID_JSON, 400) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise _refused(_too_deep(), ErrorCode.LIMIT_EXCEEDED, 400) from None
    except json.JSONDecodeError as exc:
        raise _refused(invalid_json(exc.doc, exc.pos, exc.msg), ErrorCode.INVALID_JSON, 400) from None
    nesting = _may_nest(text) and max_nesting(raw) >= MAX_JSON_DEPTH
    check_value(value, surrogates=_SURROGATE_ESCAPE.search(text) is not None, nesting=nesting)
    return value


def max_nesting(raw: bytes) -> int:
    """How many containers deep a parsed-clean JSON text goes, in C-speed passes (no per-value walk).

    Only bodies this finds at or past the limit are walked, which tells "past it" exactly as the
    dispatcher does (a scalar is one more level).
    """
    brackets = _STRING.sub(b"", raw).translate(_OPENS_AS_2_CLOSES_AS_0, _NOT_A_BRACKET)
    return max(accumulate(map(sub, brackets, repeat(1))), default=0)


def check_value(value: Any, *, surrogates: bool = True, nesting: bool = True) -> None:
    """One iterative walk: refuse nesting deeper than MAX_JSON_DEPTH and strings with lone surrogates.

    Depth counts as the dispatcher counts it (a scalar is one level), so both doors refuse the same bodies.
    """
    if isinstance(value, str) and surrogates:
        _check_text(value)
    if not (surrogates or nesting) or type(value) not in _CONTAINERS:
        return
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if nesting and item and depth >= MAX_JSON_DEPTH:
            raise _refused(_too_deep(), ErrorCode.LIMIT_EXCEEDED, 400)
        if isinstance(item, dict):
            if surrogates:
                for key in item:
                    _check_text(key)
            children: Any = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind in _CONTAINERS:
                stack.append((child, depth + 1))
            elif surrogates and kind is str:
                _check_text(child)


_CONTAINERS = (dict, list)


def _check_text(text: str) -> None:
    if not text.isascii():
        _refuse_surrogates(text)


def _refuse_surrogates(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refused(
            "request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
            ErrorCode.INVALID_REQUEST,
            422,
        ) from None


def _may_nest(text: str) -> bool:
    # Past the limit takes MAX_JSON_DEPTH containers holding a value; counting is C-speed, a walk is not.
    return text.count("[") + text.count("{") >= MAX_JSON_DEPTH


def _too_deep() -> str:
    return f"request body nests deeper than {MAX_JSON_DEPTH} levels"


def _refused(message: str, code: ErrorCode, status: int) -> BodyRefusedHTTPError:
    return BodyRefusedHTTPError(PermanentError(message, code=code), status)


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            if len(raw) > THREAD_PARSE_BYTES:
                self._json = await run_in_threadpool(parse_body, raw)
            else:
                self._json = parse_body(raw)
        return self._json


class StrictJSONRoute(APIRoute):
    """Every route reads its JSON body through `StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
