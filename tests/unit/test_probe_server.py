"""The probe server (prometheus-client's ASGI app and two probe routes on uvicorn): same paths, codes
and bodies as before, bounded, and a busy port falls back to an ephemeral one."""

from __future__ import annotations

import socket

import httpx

import scf.fleet.metrics  # noqa: F401  (registers scf_build_info)
from scf.fleet.http import ProbeServer, http_get


async def test_probes_and_metrics_are_served() -> None:
    ready = {"now": False}
    probe = ProbeServer(lambda: ready["now"], host="127.0.0.1", port=0)
    await probe.start()
    try:
        assert probe.port is not None
        assert await http_get(probe.port, "/healthz") == (200, b'{"status":"alive"}')
        assert (await http_get(probe.port, "/readyz"))[0] == 503
        ready["now"] = True
        assert await http_get(probe.port, "/readyz") == (200, b'{"status":"ready"}')
        status, body = await http_get(probe.port, "/metrics")
        assert status == 200 and b"scf_build_info" in body
        assert (await http_get(probe.port, "/nothing"))[0] == 404
        async with httpx.AsyncClient() as client:
            posted = await client.post(f"http://127.0.0.1:{probe.port}/metrics")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    finally:
        await probe.stop()


async def test_a_supervisors_own_metrics_text_is_served() -> None:
    probe = ProbeServer(lambda: True, host="127.0.0.1", port=0, metrics=lambda: b"scf_merged 1\n")
    await probe.start()
    try:
        assert probe.port is not None
        assert await http_get(probe.port, "/metrics") == (200, b"scf_merged 1\n")
    finally:
        await probe.stop()


async def test_a_busy_port_falls_back_to_an_ephemeral_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        probe = ProbeServer(lambda: True, host="127.0.0.1", port=busy)
        await probe.start()
        try:
            assert probe.port not in (None, busy)
            assert (await http_get(probe.port or 0, "/healthz"))[0] == 200
        finally:
            await probe.stop()
