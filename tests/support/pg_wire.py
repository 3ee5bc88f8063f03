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

from tests.support.proxy import TcpProxy

ROUND_TRIP_TYPES = frozenset({"S", "H", "Q"})


class PgWireCounter(TcpProxy):
    """A `TcpProxy` whose client-to-server side reads whole protocol messages and records their types."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        super().__init__(target_port, target_host)
        self.messages: list[str] = []  # frontend message types, in order, across every connection

    def mark(self) -> int:
        return len(self.messages)

    def since(self, mark: int) -> list[str]:
        return self.messages[mark:]

    def round_trips(self, mark: int) -> int:
        return sum(1 for kind in self.since(mark) if kind in ROUND_TRIP_TYPES)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool = False
    ) -> None:
        if not upstream:
            await super()._pipe(reader, writer)
            return
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
