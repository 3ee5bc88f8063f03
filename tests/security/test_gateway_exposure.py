"""Item 11 (gateway side) against real gateway processes: who the audit log says called, and what the
documents, probes and error bodies reveal about the broker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.fleet import FleetProcess
from tests.support.gateway_http import Gateway, gateway_fixtures, start_gateway
from tests.support.services import Vhost

pytestmark = pytest.mark.integration
gateway, http = gateway_fixtures("gateway-exposure")


def audit_callers(process: FleetProcess, what: str) -> list[str]:
    return [
        event["caller"]
        for line in process.own_output().splitlines()
        if '"event": "audit"' in line and what in line
        for event in [json.loads(line)]
        if event.get("what") == what
    ]


async def wait_for_audit(process: FleetProcess, what: str) -> list[str]:
    for _ in range(100):  # the audit line is written after the response: poll for it, bounded
        callers = audit_callers(process, what)
        if callers:
            return callers
        await asyncio.sleep(0.05)
    return []


async def test_a_forged_x_forwarded_for_does_not_name_the_audit_caller(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    path = f"/connectors/xff_{uuid.uuid4().hex[:12]}"
    forged = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Scf-Caller": "http:admin"}
    await http.get(path, headers=forged)

    assert await wait_for_audit(gateway.process, f"GET {path}") == ["http:127.0.0.1"]


async def test_x_forwarded_for_is_believed_from_a_configured_proxy(
    fleet: object, env: dict[str, str], logs: Path
) -> None:
    proxied = start_gateway(env, logs, "gateway-proxied", SCF_TRUSTED_PROXIES="127.0.0.1/32, ::1")
    try:
        path = f"/connectors/xff_{uuid.uuid4().hex[:12]}"
        async with httpx.AsyncClient(base_url=proxied.url, timeout=30) as http:
            await http.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
        callers = await wait_for_audit(proxied.process, f"GET {path}")
    finally:
        proxied.process.stop()

    assert callers == ["http:203.0.113.9"]


async def test_documents_and_errors_name_no_internal_host_user_or_vhost(
    http: httpx.AsyncClient, vhost: Vhost
) -> None:
    pages = [
        await http.get(path) for path in ("/asyncapi.json", "/openapi.json", "/docs", "/healthz", "/readyz")
    ]
    errors = [
        await http.get("/connectors/nope_missing"),
        await http.post("/connectors", content=b"{"),
        await http.get("/operations/op_missing_1"),
    ]
    server = pages[0].json()["servers"]["rabbitmq"]["url"]

    assert [p.status_code for p in pages] == [200] * 5
    assert "@" not in server and "127.0.0.1" not in server and vhost.name not in server
    for response in pages + errors:
        assert "guest" not in response.text, response.url
        assert vhost.name not in response.text, response.url
        assert ":5672" not in response.text and ":6379" not in response.text, response.url
