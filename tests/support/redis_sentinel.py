"""A replicated Redis on loopback: a primary, a replica and three Sentinels, each a private process.

The Sentinels watch the primary as service `scf` (quorum 2) and fail over to the replica one second
after the primary stops answering. Every process has its own port and temp dir; nothing touches the
machine's Redis.
"""

from __future__ import annotations

import socket
import time
from typing import Self

from tests.support.private_services import (
    LOOPBACK,
    PrivateRedis,
    PrivateService,
    PrivateServiceError,
    StartsOnEnter,
)

SERVICE = "scf"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def ask(port: int, *command: str, timeout: float = 1.0) -> bytes:
    """One RESP command to a loopback Redis or Sentinel; the raw reply ("" when nobody answers)."""
    body = f"*{len(command)}\r\n".encode() + b"".join(
        f"${len(part.encode())}\r\n{part}\r\n".encode() for part in command
    )
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(body)
            return sock.recv(65536)
    except OSError:
        return b""


class PrivateRedisReplica(PrivateRedis):
    """A `redis-server` that starts as a replica of the primary on `primary_port`."""

    def __init__(self, primary_port: int) -> None:
        super().__init__(persistent=True)
        self.primary_port = primary_port

    def _command(self) -> list[str]:
        return [*super()._command(), "--replicaof", LOOPBACK, str(self.primary_port)]


class PrivateSentinel(PrivateService):
    kind = "sentinel"
    start_timeout = 10.0
    stop_timeout = 10.0

    def __init__(self, primary_port: int) -> None:
        super().__init__()
        self.primary_port = primary_port
        self.config = self.dir / "sentinel.conf"

    def _prepare(self) -> None:
        # Sentinel rewrites its own config file (what it learned): it must be its own and writable.
        self.config.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    f"bind {LOOPBACK}",
                    f"dir {self.dir}",
                    f"sentinel monitor {SERVICE} {LOOPBACK} {self.primary_port} 2",
                    f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {SERVICE} 1",
                    "",
                ]
            )
        )

    def _command(self) -> list[str]:
        return ["redis-server", str(self.config), "--sentinel"]

    def _ready(self) -> bool:
        return ask(self.port, "PING").startswith(b"+PONG")

    def primary(self) -> int | None:
        """The port this Sentinel names as the primary of `scf` now."""
        reply = ask(self.port, "SENTINEL", "get-master-addr-by-name", SERVICE)
        parts = reply.split(b"\r\n")
        # *2 $9 127.0.0.1 $4 6380
        return int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else None


class ReplicatedRedis(StartsOnEnter):
    """Primary, replica and three Sentinels; `sentinels` is the `SCF_REDIS_SENTINELS` value."""

    def __init__(self) -> None:
        self.primary = PrivateRedis(persistent=True)
        self.replica = PrivateRedisReplica(self.primary.port)
        self.watchers = [PrivateSentinel(self.primary.port) for _ in range(3)]

    @property
    def sentinels(self) -> str:
        return ",".join(f"{LOOPBACK}:{watcher.port}" for watcher in self.watchers)

    @property
    def url(self) -> str:
        """`SCF_REDIS_URL` beside the Sentinels: only its database is used (db 0)."""
        return f"redis://{LOOPBACK}:{self.primary.port}/0"

    def start(self) -> Self:
        self.primary.start()
        self.replica.start()
        self.wait_replicating(timeout=20)
        for watcher in self.watchers:
            watcher.start()
        self.wait_primary_is(self.primary.port, timeout=20)
        return self

    def wait_replicating(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"master_link_status:up" in ask(self.replica.port, "INFO", "replication"):
                return
            time.sleep(0.1)
        raise PrivateServiceError("the replica never caught up with the primary")

    def wait_primary_is(self, port: int, timeout: float) -> float:
        """Seconds until every Sentinel names `port` as the primary."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if all(watcher.primary() == port for watcher in self.watchers):
                return time.monotonic() - started
            time.sleep(0.05)
        named = [watcher.primary() for watcher in self.watchers]
        raise PrivateServiceError(f"the Sentinels name {named}, not {port}, after {timeout} s")

    def close(self) -> None:
        for service in (*self.watchers, self.replica, self.primary):
            service.close()
