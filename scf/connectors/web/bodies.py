"""Reading a response body under a byte cap that holds after content decoding (gzip bombs stay small).

The body is read raw and decoded here, each zlib call bounded by `max_length`, so neither the bytes on
the wire nor the decoded bytes ever exceed `max_bytes` in memory; httpx's own decoder could expand one
64 KiB chunk a thousandfold first. Only gzip and deflate are offered and accepted.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from scf.schemas.errors import ErrorCode, PermanentError

ACCEPT_ENCODING = "gzip, deflate"
MAX_STACKED_ENCODINGS = 2
_GZIP_WBITS = zlib.MAX_WBITS | 16


def too_large(max_bytes: int, what: str = "the response") -> PermanentError:
    return PermanentError(
        f"{what} is larger than {max_bytes} bytes (custom_config.max_response_bytes)",
        code=ErrorCode.LIMIT_EXCEEDED,
    )


class _ZlibStage:
    """One content coding, decoded with every call's output bounded by the remaining budget."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._wbits = _GZIP_WBITS if self._gzip else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes, budget: int) -> bytes:
        """Decode `data`; raise OverflowError as soon as the output would exceed `budget` bytes."""
        out = bytearray()
        while data:
            if self._inflater.eof:
                if not self._gzip:
                    break  # trailing bytes after a deflate stream carry nothing
                self._inflater = zlib.decompressobj(self._wbits)  # the next gzip member
            try:
                chunk = self._inflater.decompress(data, budget - len(out) + 1)
            except zlib.error:
                if self._gzip or self._started:
                    raise
                # "deflate" is zlib-wrapped by the standard but raw deflate on some servers.
                self._wbits, self._inflater = -zlib.MAX_WBITS, zlib.decompressobj(-zlib.MAX_WBITS)
                chunk = self._inflater.decompress(data, budget - len(out) + 1)
            self._started = True
            out += chunk
            if len(out) > budget:
                raise OverflowError
            data = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
        return bytes(out)

    def flush(self, budget: int) -> bytes:
        out = self._inflater.flush()
        if len(out) > budget:
            raise OverflowError
        return out


class BoundedDecoder:
    """Decodes a body's content codings (`Content-Encoding`, applied in order) within `max_bytes`."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        unsupported = [c for c in codings if c not in ("gzip", "x-gzip", "deflate")]
        if unsupported or len(codings) > MAX_STACKED_ENCODINGS:
            raise PermanentError(
                f"the API answered with an unsupported content encoding ({', '.join(codings)})",
                code=ErrorCode.INVALID_DATA,
            )
        self._stages = [_ZlibStage(c) for c in reversed(codings)]
        self._max = max_bytes
        self._raw = 0
        self._decoded = bytearray()

    @property
    def encoded(self) -> bool:
        return bool(self._stages)

    def feed(self, raw: bytes) -> None:
        self._raw += len(raw)
        if self._raw > self._max:
            raise too_large(self._max)
        data = raw
        try:
            for stage in self._stages:
                data = stage.feed(data, self._max - len(self._decoded))
        except OverflowError:
            raise too_large(self._max, "the decoded response") from None
        except zlib.error as exc:
            raise _corrupt(exc) from None
        self._append(data)

    def finish(self) -> bytes:
        try:
            for position, stage in enumerate(self._stages):
                tail = stage.flush(self._max - len(self._decoded))
                for later in self._stages[position + 1 :]:
                    tail = later.feed(tail, self._max - len(self._decoded))
                self._append(tail)
        except OverflowError:
            raise too_large(self._max, "the decoded response") from None
        except zlib.error as exc:
            raise _corrupt(exc) from None
        return bytes(self._decoded)

    def _append(self, data: bytes) -> None:
        if len(self._decoded) + len(data) > self._max:
            raise too_large(self._max, "the decoded response")
        self._decoded += data


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body of a streamed response, or `permanent` LIMIT_EXCEEDED past `max_bytes`."""
    decoder = BoundedDecoder(response.headers.get("content-encoding"), max_bytes)
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    async for chunk in response.aiter_raw():
        decoder.feed(chunk)
    return decoder.finish()


@dataclass(frozen=True)
class FetchedBody:
    """A fully read response: status, headers, decoded content, the final URL and the redirects taken."""

    status_code: int
    headers: httpx.Headers
    content: bytes = field(repr=False)
    url: httpx.URL = field(repr=False)  # may carry an API key in its query
    redirects: int = 0

    def json(self) -> Any:
        """The body as JSON; `permanent` INVALID_DATA when it is not."""
        try:
            return json.loads(self.content)
        except (ValueError, RecursionError) as exc:
            content_type = self.headers.get("content-type", "no content type")
            raise PermanentError(
                f"the API did not answer JSON ({content_type[:80]}, {len(self.content)} bytes)",
                code=ErrorCode.INVALID_DATA,
                detail=f"{type(exc).__name__}: {str(exc)[:200]}",
            ) from None

    def text(self, limit: int = 300) -> str:
        return self.content[:limit].decode("utf-8", errors="replace")


def _corrupt(exc: zlib.error) -> PermanentError:
    return PermanentError(
        "the API's compressed response is corrupt", code=ErrorCode.INVALID_DATA, detail=str(exc)
    )
