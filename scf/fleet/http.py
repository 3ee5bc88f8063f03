"""A tiny HTTP server every non-gateway process runs: `/healthz`, `/readyz` and Prometheus `/metrics`.

Written on asyncio streams so workers need no web framework; it answers GET only and closes each
connection after one response. A supervisor serves the same three paths for all its children: its
checks may be coroutines (it asks the children), and `merge_metrics` labels each child's samples.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

log = structlog.get_logger(__name__)

T = TypeVar("T")

Check = Callable[[], bool | Awaitable[bool]]
MetricsText = Callable[[], bytes | Awaitable[bytes]]

#: The most a supervisor reads of one child's answer (its own process, but still a bound).
MAX_CHILD_RESPONSE = 32 * 1024 * 1024


def _alive() -> bool:
    return True


def _own_metrics() -> bytes:
    return generate_latest()


class ProbeServer:
    def __init__(
        self,
        ready: Check,
        host: str = "0.0.0.0",  # noqa: S104
        port: int = 9464,
        *,
        alive: Check = _alive,
        metrics: MetricsText = _own_metrics,
    ) -> None:
        self._ready = ready
        self._alive = alive
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self._port == 0:
                raise
            log.warning("metrics_port_in_use", port=self._port, fallback="ephemeral")
            self._server = await asyncio.start_server(self._serve, self._host, 0)
        log.info("probe_server_started", port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else ""
            status, content_type, body = await self._route(parts[0] if parts else "", path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/healthz":
            if await _answer(self._alive()):
                return "200 OK", "application/json", b'{"status":"alive"}\n'
            return "503 Service Unavailable", "application/json", b'{"status":"not alive"}\n'
        if path == "/readyz":
            if await _answer(self._ready()):
                return "200 OK", "application/json", b'{"status":"ready"}\n'
            return "503 Service Unavailable", "application/json", b'{"status":"not ready"}\n'
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, await _answer(self._metrics())
        return "404 Not Found", "text/plain", b"not found\n"


async def _answer(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await value
    return value


async def http_get(port: int, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """GET `path` from a probe server on loopback: (status, body); raises OSError/TimeoutError."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            raw = bytearray()
            while chunk := await reader.read(65536):
                raw += chunk
                if len(raw) > MAX_CHILD_RESPONSE:
                    raise OSError(errno.EMSGSIZE, f"answer from :{port}{path} is over {MAX_CHILD_RESPONSE}")
        finally:
            writer.close()
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(errno.EPROTO, f"not an HTTP answer from :{port}{path}")
    return int(status_line[1]), body


class _Families:
    """A collector that yields metric families already gathered (one scrape's worth)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def parse_metrics(text: bytes) -> list[Metric]:
    return list(text_string_to_metric_families(text.decode("utf-8", errors="replace")))


def merge_metrics(sources: Iterable[tuple[str, Iterable[Metric]]], label: str = "process") -> bytes:
    """One exposition of several processes' metrics, each sample labelled `label=<source name>`.

    Families are merged by name so each name has one HELP/TYPE; a family whose type disagrees with
    the first source's is dropped (it cannot be exposed under one TYPE line).
    """
    families: dict[str, Metric] = {}
    for source, metrics in sources:
        for family in metrics:
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type)
            elif merged.type != family.type:
                log.warning("metrics_type_conflict", family=family.name, source=source)
                continue
            merged.samples.extend(s._replace(labels={**s.labels, label: source}) for s in family.samples)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)
