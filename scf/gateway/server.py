"""Runs the gateway app on uvicorn inside a fleet process, under the runner's signal handling.

It binds `SCF_GATEWAY_HOST` (127.0.0.1 by default) and serves HTTPS when `SCF_TLS_CERTFILE` and
`SCF_TLS_KEYFILE` are both set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from scf.fleet.settings import Settings
from scf.gateway.app import create_app
from scf.gateway.bodies import MAX_HEADER_BYTES


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The fleet runner owns SIGTERM/SIGINT and stops the gateway itself.
        yield


class GatewayServer:
    role = "gateway"

    def __init__(self, settings: Settings, host: str | None = None, app: FastAPI | None = None) -> None:
        certfile, keyfile = settings.scf_tls_certfile, settings.scf_tls_keyfile
        if (certfile is None) != (keyfile is None):
            raise ValueError("TLS needs both SCF_TLS_CERTFILE and SCF_TLS_KEYFILE (or neither)")
        config = uvicorn.Config(
            app or create_app(settings),
            # loopback unless told otherwise (SCF_GATEWAY_HOST): exposing the door is a decision
            host=host or settings.scf_gateway_host,
            port=settings.service_connector_factory_port,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            log_config=None,
            access_log=False,
            lifespan="on",
            # X-Forwarded-For names the audit caller: believe it only from the proxies we were told of
            # (uvicorn's own default would trust any loopback peer, i.e. every local client).
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or [],
            # One bound on header blocks whether they arrive whole (BodyGuard: typed 431) or in pieces
            # (h11: plain 400); h11's own default, 16 KiB, only bounded the second.
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._server.started and not self._server.should_exit

    @property
    def port(self) -> int | None:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="gateway")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start (e.g. port in use)
                raise RuntimeError("the gateway stopped before it started")
            await asyncio.sleep(0.05)

    async def stop(self, grace: float) -> None:
        self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=grace + 5)
            except TimeoutError:
                self._task.cancel()
