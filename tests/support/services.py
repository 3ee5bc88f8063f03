"""Real services for tests: reachability checks that fail under CI (skip locally), and isolation.

Each test session gets its own RabbitMQ vhost and Redis database so it never touches a developer's
running fleet, and a fresh Fernet key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from dataclasses import dataclass

import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_DSN = os.environ.get("SCF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Redis databases tests may claim (0 stays the developer's fleet; 13 is the benchmark's).
TEST_REDIS_DBS = (15, 14, 12, 11, 10, 9, 8, 7, 6, 5)
_CLAIM_KEY = "scf-test:claimed-by"


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


@dataclass(frozen=True)
class RedisDb:
    """A Redis database this test session owns until `release()`: empty at claim, flushed at release."""

    index: int
    token: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:6379/{self.index}"

    def release(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            if client.get(_CLAIM_KEY) == self.token.encode():
                client.flushdb()
        finally:
            client.close()


def claim_redis_db() -> RedisDb:
    """Claim a free test database, so concurrent test sessions never flush each other's state."""
    token = uuid.uuid4().hex
    for index in TEST_REDIS_DBS:
        client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{index}")
        try:
            if client.set(_CLAIM_KEY, token, nx=True, ex=3 * 3600):
                for key in client.scan_iter("scf:*"):
                    client.delete(key)
                return RedisDb(index, token)
        finally:
            client.close()
    raise RuntimeError(f"every test Redis database {TEST_REDIS_DBS} is claimed by another session")
