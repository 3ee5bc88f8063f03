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

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_DSN = os.environ.get("SCF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_DB = int(os.environ.get("SCF_TEST_REDIS_DB", "15"))


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
