"""A loopback proxy that reads the PostgreSQL frontend protocol and counts the client's messages.

A round trip is a message after which the client waits for the server: `Sync` ('S', the end of an
extended-protocol exchange), `Flush` ('H', after asyncpg's Parse + Describe) or a simple `Query` ('Q').
The proxy also keeps every message's type in order, so a test can say *which* messages a call sent
(Parse 'P', Bind 'B', Execute 'E', Close 'C', Describe 'D', ...). It expects no TLS (`ssl_mode` disable)
and trust authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

ROUND_TRIP_TYPES = frozenset({"S", "H", "Q"})


class PgWireCounter:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.messages: list[str] = []  # frontend message types, in order, across every connection
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def mark(self) -> int:
        return len(self.messages)

    def since(self, mark: int) -> list[str]:
        return self.messages[mark:]

    def round_trips(self, mark: int) -> int:
        return sum(1 for kind in self.since(mark) if kind in ROUND_TRIP_TYPES)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(self._frontend(reader, up_writer), self._backend(up_reader, writer))

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!i", await reader.readexactly(4))  # the startup packet
            writer.write(struct.pack("!i", length) + await reader.readexactly(length - 4))
            while True:
                head = await reader.readexactly(5)
                kind, size = head[:1].decode("ascii"), struct.unpack("!i", head[1:])[0]
                body = await reader.readexactly(size - 4)
                self.messages.append(kind)
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _backend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
