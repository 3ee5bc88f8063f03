"""A real `scf gateway` process for the hostile-HTTP suite, and raw HTTP/1.1 over a socket.

Raw sockets where httpx would be too polite (lying lengths, slow bodies, early refusals); the process's
own /proc/<pid>/status for memory bounds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.support.fleet import FleetProcess

MiB = 1024 * 1024
LIMIT = 16 * MiB  # SCF_MAX_REQUEST_BYTES's default: the gateways here run with it
BUDGET = 16 * LIMIT  # SCF_MAX_BODY_MEMORY's default
HELD_PER_BYTE = 5  # what the budget reserves per body byte before parsing (scf.gateway.bodies)
READ_TIMEOUT = 4.0
CANARY = "gw-body-canary-pw-5d1e"
JSON_HEADERS = {"content-type": "application/json"}
VALIDATE = "/connector-types/postgresql/validate"  # parses the body, needs no connector: cheap to hit
PG = {
    "service_type": "postgresql",
    "host": "127.0.0.1",
    "database": "test",
    "username": "postgres",
    "password": CANARY,
}


@dataclass
class Gateway:
    url: str
    port: int
    process: FleetProcess

    def memory_kib(self, field: str) -> int:
        """`VmRSS` (now) or `VmHWM` (peak) of the gateway process, from /proc."""
        status = Path(f"/proc/{self.process.proc.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(field + ":"))
        return int(line.split()[1])


def start_gateway(env: dict[str, str], logs: Path, name: str, **extra: str) -> Gateway:
    port = free_port()
    process = FleetProcess(
        ["gateway"],
        {
            **env,
            "SERVICE_CONNECTOR_FACTORY_PORT": str(port),
            "SCF_BODY_READ_TIMEOUT": str(READ_TIMEOUT),
            **extra,
        },
        logs / f"{name}.log",
    )
    process.wait_ready()
    return Gateway(f"http://127.0.0.1:{port}", port, process)


def gateway_fixtures(name: str) -> tuple[Any, Any]:
    """Module-scoped fixtures `gateway` (its own process, logging to `<name>.log`) and `http` (a client).

    In a test module: `gateway, http = gateway_fixtures("gateway-limits")`.
    """

    @pytest.fixture(scope="module")
    def gateway(fleet: object, env: dict[str, str], logs: Path) -> Iterator[Gateway]:
        started = start_gateway(env, logs, name)
        try:
            yield started
        finally:
            started.process.stop()

    @pytest.fixture(scope="module")
    async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            yield client

    return gateway, http


async def still_serving(http: httpx.AsyncClient) -> None:
    """A normal caller is answered right after an attack."""
    health = await http.get("/healthz")
    listed = await http.get("/connectors")
    assert (health.status_code, health.json()) == (200, {"status": "alive"})
    assert listed.status_code == 200 and "connectors" in listed.json()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(status, headers, body)


async def connect(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gateway.port)


def request_head(path: str, headers: dict[str, str], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def padded_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    shell = b'{"service_name": "big", "pad": ""}'
    return shell[:-2] + b"a" * (size - len(shell)) + shell[-2:]


def assert_typed(response: RawResponse | httpx.Response, status: int, code: str) -> None:
    body = response.json()
    error = body["error"]
    assert (response.status_code if isinstance(response, httpx.Response) else response.status) == status, body
    assert error["code"] == code, body
    assert set(error) == {"category", "code", "message", "retryable", "retry_after"}
