"""A tiny HTTP server every non-gateway process runs: `/healthz`, `/readyz` and Prometheus `/metrics`.

Written on asyncio streams so workers need no web framework; it answers GET only and closes each
connection after one response.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = structlog.get_logger(__name__)

ReadyCheck = Callable[[], bool]


class ProbeServer:
    def __init__(self, ready: ReadyCheck, host: str = "0.0.0.0", port: int = 9464) -> None:  # noqa: S104
        self._ready = ready
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
            status, content_type, body = self._route(parts[0] if parts else "", path)
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

    def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/healthz":
            return "200 OK", "application/json", b'{"status":"alive"}\n'
        if path == "/readyz":
            if self._ready():
                return "200 OK", "application/json", b'{"status":"ready"}\n'
            return "503 Service Unavailable", "application/json", b'{"status":"not ready"}\n'
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        return "404 Not Found", "text/plain", b"not found\n"
