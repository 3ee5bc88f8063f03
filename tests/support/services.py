"""Real services for tests: reachability checks that fail under CI (skip locally), and isolation.

Each test session gets its own RabbitMQ vhost (created here, deleted at the end) and its own private
`redis-server` (databases claimed from it), so it never reads, writes or flushes a user's data on the
machine's shared services. PostgreSQL tests work in schemas or tables they created
(tests/support/pg_schema.py).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.private_services import LOOPBACK, PrivateRedis

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_DSN = os.environ.get("SCF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Databases of the session's private Redis (one per claim; a session makes about ten claims).
SESSION_REDIS_DATABASES = 256


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """A missing service fails the test under CI and skips it on a developer machine."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI requires every real service)")
    pytest.skip(message)


@dataclass(frozen=True)
class Vhost:
    name: str

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.name}"


def create_vhost() -> Vhost:
    vhost = Vhost(f"scf-test-{uuid.uuid4().hex[:8]}")
    subprocess.run(
        ["rabbitmqctl", "-q", "add_vhost", vhost.name], check=True, capture_output=True, timeout=60
    )
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost.name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return vhost


def delete_vhost(vhost: Vhost) -> None:
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_vhost", vhost.name], check=False, capture_output=True, timeout=60
    )


class _SessionRedis(PrivateRedis):
    """The test session's own `redis-server`: no persistence, enough databases for every claim."""

    def _command(self) -> list[str]:
        return [*super()._command(), "--databases", str(SESSION_REDIS_DATABASES)]


_session_redis: _SessionRedis | None = None
_next_db = itertools.count(1)  # db 0 stays unused, so a bare URL never lands in a claimed database
_lock = threading.Lock()


def session_redis() -> _SessionRedis:
    """Start (once per process) the private Redis every claimed database lives on; it dies at exit."""
    global _session_redis
    with _lock:
        if _session_redis is None or not _session_redis.running:
            if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
                message = "redis-server is not installed: the test session cannot run its own Redis"
                if IN_CI:
                    pytest.fail(message + " (CI requires it)")
                pytest.skip(message)
            server = _SessionRedis()
            server.start()
            atexit.register(server.close)
            _session_redis = server
        return _session_redis


@dataclass(frozen=True)
class RedisDb:
    """A database on the session's private Redis, owned by one fixture until `release()`.

    The server is this process's own, so nothing a user stored can be in it: flushing at release is safe
    by construction, and the machine's shared Redis (127.0.0.1:6379) is never written by a claim.
    """

    index: int
    port: int
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.index}"

    def release(self) -> None:
        client = redis.Redis(host=self.host, port=self.port, db=self.index)
        try:
            client.flushdb()
        except redis.ConnectionError:
            pass  # the private server is already gone (interpreter exit): nothing left to clean
        finally:
            client.close()


def claim_redis_db() -> RedisDb:
    """A fresh, empty database of this session's private Redis (never one of the shared server's)."""
    server = session_redis()
    with _lock:  # never one given back: a process of the last owner may still be writing to it
        index = next(_next_db)
    if index >= SESSION_REDIS_DATABASES:
        raise RuntimeError(f"this session claimed all {SESSION_REDIS_DATABASES - 1} private Redis databases")
    return RedisDb(index, server.port)
