"""Request bodies at the gateway's edge: refused over the size limit before they are read whole, counted
against a budget of the memory they take (read, then parsed), and read within a deadline.

A pure ASGI middleware that reads the body itself, so a refusal never reaches FastAPI's parser, then
replays it to the app in one piece (the app reads JSON bodies whole anyway: no extra copy).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scf.gateway.errors import http_status, refusal_body, retry_after_header
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError, ResourceError

log = structlog.get_logger(__name__)

#: The request line and headers together; uvicorn's parser only bounds a block that arrives in pieces.
MAX_HEADER_BYTES = 64 * 1024
#: After refusing a body mid-stream, how long the rest is read and discarded before the connection is
#: closed: closing on unread data makes the kernel send a reset that can destroy the refusal in flight.
LINGER_SECONDS = 2.0
#: Memory a body's bytes take while it is handled: the bytes, the text decoded from them, the str values,
#: and the request encoded again for the fleet (measured: 5 bodies of 15 MiB at once peaked at 324 MiB,
#: about 4.3 times their bytes; 3 let the budget be overrun).
HELD_PER_BODY_BYTE = 5
#: Bodies up to this size are always admitted (they still count), so probes and ordinary calls never
#: wait behind a few large uploads.
ALWAYS_ADMITTED_BYTES = 64 * 1024


class ByteBudget:
    """Memory request bodies take at once (bytes read, then what they parse into); a large body that would
    overflow it is refused, unless nothing else holds any: one body alone is bounded by the size limit."""

    def __init__(self, limit: int, always_admitted: int = ALWAYS_ADMITTED_BYTES) -> None:
        self.limit = limit
        self.always_admitted = always_admitted
        self.held = 0

    def take(self, size: int, request_total: int, holding: int = 0) -> bool:
        """Reserve `size` more bytes for a request that holds `holding` and then `request_total`.

        False: refuse it (the caller gives back what it holds).
        """
        alone = self.held == holding
        if request_total > self.always_admitted and not alone and self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class BodyRefusedError(Exception):
    def __init__(
        self, error: ConnectorError, *, close: bool, linger: bool = False, status: int | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.close = close  # the rest of the body is unbounded or never coming: drop the connection
        self.linger = linger  # the client may still be sending: discard a while before closing
        self.status = status or http_status(error.to_info())


class BodyGuard:
    """Refuses bodies over `max_bytes` (413), over the budget (503 + Retry-After), too slow (408), and
    header blocks over MAX_HEADER_BYTES (431)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, budget: ByteBudget, read_timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.budget = budget
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _header_bytes(scope) > MAX_HEADER_BYTES:
            too_large = PermanentError(
                f"request headers exceed {MAX_HEADER_BYTES} bytes", code=ErrorCode.REQUEST_TOO_LARGE
            )
            await _refuse(scope, receive, send, BodyRefusedError(too_large, close=True, status=431))
            return
        if not _has_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            body, held = await self._read(scope, receive)
        except BodyRefusedError as refused:
            await _refuse(scope, receive, send, refused)
            return
        except _GoneError:
            return  # the client went away: nobody to answer
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.budget.give_back(held)

    async def _read(self, scope: Scope, receive: Receive) -> tuple[bytes, int]:
        """The whole body and the bytes reserved for it; on any refusal the reservation is given back."""
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Refused on the header alone; uvicorn discards the declared rest without buffering it.
            raise BodyRefusedError(_too_large(self.max_bytes), close=False)
        held = received = 0
        chunks: list[bytes] = []
        try:
            if declared:
                if not self.budget.take(HELD_PER_BODY_BYTE * declared, declared):
                    raise BodyRefusedError(_busy(), close=False)
                held = HELD_PER_BODY_BYTE * declared
            async with asyncio.timeout(self.read_timeout):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _GoneError
                    chunk: bytes = message.get("body", b"")
                    more = bool(message.get("more_body", False))
                    received += len(chunk)
                    if received > self.max_bytes:  # chunked: the length is only known as it comes
                        raise BodyRefusedError(_too_large(self.max_bytes), close=True, linger=True)
                    if declared is None and chunk:
                        if not self.budget.take(HELD_PER_BODY_BYTE * len(chunk), received, held):
                            raise BodyRefusedError(_busy(), close=True, linger=True)
                        held += HELD_PER_BODY_BYTE * len(chunk)
                    if chunk:
                        chunks.append(chunk)
        except TimeoutError:
            self.budget.give_back(held)
            raise BodyRefusedError(_too_slow(self.read_timeout), close=True, status=408) from None
        except (BodyRefusedError, _GoneError):
            self.budget.give_back(held)
            raise
        body = b"".join(chunks)
        weight = object_weight(body)
        if not self.budget.take(weight, len(body), held):  # small bodies stay admitted, by their bytes
            self.budget.give_back(held)
            raise BodyRefusedError(_busy(), close=False)  # read whole: the connection stays usable
        return body, held + weight


class _GoneError(Exception):
    """The client disconnected before its body was complete."""


def object_weight(body: bytes) -> int:
    """What the objects `body` parses into cost beyond HELD_PER_BODY_BYTE, over-estimated in C-speed counts.

    Per JSON token that becomes a Python object, CPython's sizes: an empty dict 64 B, a list 56 B, a str
    ~50 B, each element's pointer and a boxed number ~32 B. 15 MiB of `{},` parse into ~330 MiB.
    """
    containers = body.count(b"{") + body.count(b"[")
    strings = body.count(b'"') // 2
    values = body.count(b",") + containers
    return 64 * containers + 50 * strings + 32 * values


def _header_bytes(scope: Scope) -> int:
    line = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def _has_body(scope: Scope) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent or unreadable (then bytes are counted as they come).

    uvicorn's parser has already refused malformed or conflicting lengths; another server might not.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: the client's disconnect, as usual
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, refused: BodyRefusedError) -> None:
    info = refused.error.to_info()
    log.warning("request_body_refused", code=info.code, path=scope.get("path", "")[:200])
    content = json.dumps(refusal_body(scope["method"], scope.get("path", ""), info)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in retry_after_header(info).items()]
    if refused.close:
        headers.append((b"connection", b"close"))
    start: dict[str, Any] = {"type": "http.response.start", "status": refused.status, "headers": headers}
    await send(start)
    if not refused.linger:
        await send({"type": "http.response.body", "body": content})
        return
    # The whole refusal goes out now (Content-Length is complete); the final empty part, which makes
    # uvicorn close the connection, waits until the client stopped sending or LINGER_SECONDS passed.
    await send({"type": "http.response.body", "body": content, "more_body": True})
    await _discard_rest(receive)
    await send({"type": "http.response.body", "body": b""})


async def _discard_rest(receive: Receive) -> None:
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return
    except TimeoutError:
        return


def _too_large(limit: int) -> ConnectorError:
    return PermanentError(
        f"request body exceeds the limit of {limit} bytes", code=ErrorCode.REQUEST_TOO_LARGE
    )


def _busy() -> ConnectorError:
    return ResourceError(
        "the gateway holds as many large request bodies as it may; try again shortly",
        code=ErrorCode.GATEWAY_BUSY,
        retry_after=1,
    )


def _too_slow(timeout: float) -> ConnectorError:
    return PermanentError(f"request body not received within {timeout:g} s", code=ErrorCode.TIMEOUT)
