"""A gateway with access control on, for unit tests: real Redis (a claimed db), a JWKS on loopback
served by `http.server` in a thread, RSA/EC keys made here, and a stub FleetClient that records whom
each call acted for (the fleet is not the subject of these tests)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import jwt
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from starlette.testclient import TestClient

from scf.fleet.access import ACTING_FOR, _process
from scf.fleet.access_store import ApiKeyRequest, ApiKeyStore
from scf.fleet.client import FleetClient
from scf.fleet.crypto import SecretBox
from scf.fleet.settings import Settings
from scf.fleet.state import StateStore
from scf.gateway.app import create_app
from scf.schemas.errors import ConfigurationError, ErrorCode

ISSUER = "https://idp.test/realm"
AUDIENCE = "scf-gateway"
SECRET_KEY = Fernet.generate_key().decode()
POLICY = """
roles:
  reader: [connectors:read]
principals:
  alice:
    grants: [metrics:read]
"""


class Jwks:
    """Signing keys (RSA `rsa-1`, EC `ec-1`) published at `url`; `stranger` is a key nobody published."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetches = 0
        keys = [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())), "kid": "rsa-1"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())), "kid": "ec-1"},
        ]
        body = json.dumps({"keys": [{**k, "use": "sig"} for k in keys]}).encode()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def token(
        self,
        sub: str = "alice",
        scope: str | list[str] | None = None,
        *,
        lifetime: float = 300,
        alg: str = "RS256",
        key: Any = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = time.time()
        payload: dict[str, Any] = {
            "sub": sub,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + lifetime,
        }
        if scope is not None:
            payload["scope"] = scope
        payload.update(claims)
        signer = key if key is not None else (self.ec if alg == "ES256" else self.rsa)
        headers = {"kid": kid or ("ec-1" if alg == "ES256" else "rsa-1")}
        return jwt.encode(payload, signer, algorithm=alg, headers=headers)


def settings_for(redis_url: str, jwks_url: str, policy: Path | None = None, **extra: Any) -> Settings:
    return Settings(
        scf_auth="on",
        scf_redis_url=redis_url,
        scf_secret_key=SECRET_KEY,
        scf_policy_file=policy,
        scf_oidc_issuer=ISSUER,
        scf_oidc_audience=AUDIENCE,
        scf_oidc_jwks_url=jwks_url,
        **extra,
    )


@dataclass
class StubFleet:
    """Answers like a fleet that has no connectors; records (method, principal name) per call."""

    calls: list[tuple[str, str | None]] = field(default_factory=list)
    connected: bool = True

    @property
    def rpc(self) -> StubFleet:
        return self

    async def close(self) -> None:
        return

    async def list_connectors(self, service_type: str | None = None) -> list[Any]:
        self._record("list_connectors")
        return []

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._record(name)
            raise ConfigurationError("no such connector", code=ErrorCode.CONNECTOR_NOT_FOUND)

        return call

    def _record(self, name: str) -> None:
        principal = ACTING_FOR.get()
        self.calls.append((name, None if principal is None else principal.name))


def app_with(settings: Settings, fleet: StubFleet) -> FastAPI:
    async def factory() -> FleetClient:
        return cast(FleetClient, fleet)

    return create_app(settings, client_factory=factory)


@contextmanager
def serving(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient with the app's lifespan run; the process-wide access view is put back after."""
    saved = dict(_process)
    try:
        with TestClient(app, raise_server_exceptions=True) as client:
            yield client
    finally:
        _process.update(saved)


def make_key(redis_url: str, name: str, grants: list[str], roles: list[str] | None = None) -> str:
    """An API key created straight in Redis (as `scf keys create` does); answers the secret."""

    async def go() -> str:
        state = StateStore.from_url(redis_url, SecretBox([SECRET_KEY]))
        try:
            request = ApiKeyRequest(name=name, grants=grants, roles=roles or [])
            return (await ApiKeyStore(state).create(request)).key
        finally:
            await state.close()

    return asyncio.run(go())
