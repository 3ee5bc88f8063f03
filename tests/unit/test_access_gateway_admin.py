"""The gateway's access control beyond the matrix: the admin API's key life cycle, key secrecy, `scf
keys`, what a bearer token must be, the policy's part in a principal, the audit line, OpenAPI's security
schemes, SCF_AUTH=off, and the bind address and TLS."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
import redis
import structlog
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

from scf.app.cli import main
from scf.fleet.access_store import KEY_PATTERN
from scf.fleet.settings import Settings
from scf.gateway.auth import OPEN, ROUTES
from scf.gateway.server import GatewayServer
from tests.support.access_gateway import (
    AUDIENCE,
    ISSUER,
    POLICY,
    SECRET_KEY,
    Jwks,
    StubFleet,
    app_with,
    make_key,
    serving,
    settings_for,
)
from tests.support.postgres import free_port
from tests.support.services import claim_redis_db


@dataclass
class Gate:
    client: TestClient
    jwks: Jwks
    admin: dict[str, str]
    redis_url: str


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    db = claim_redis_db()
    jwks = Jwks()
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(POLICY)
    admin = {"X-API-Key": make_key(db.url, "root", ["keys:admin"])}
    try:
        with serving(app_with(settings_for(db.url, jwks.url, Path(policy)), StubFleet())) as client:
            yield Gate(client, jwks, admin, db.url)
    finally:
        jwks.close()
        db.release()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def secret_of(key: str) -> str:
    """The secret part of `scf_<16 hex>_<secret>` (a secret may hold `_` itself)."""
    found = KEY_PATTERN.fullmatch(key)
    assert found is not None
    return found.group(2)


def redis_dump(url: str) -> str:
    """Every key and value in the db, as one text."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        parts = []
        for key in client.scan_iter():
            kind = client.type(key)
            value = client.hgetall(key) if kind == "hash" else client.smembers(key) if kind == "set" else ""
            parts.append(f"{key} {value}")
        return "\n".join(parts)
    finally:
        client.close()


def test_a_key_is_created_used_and_revoked_through_the_admin_api(gate: Gate) -> None:
    created = gate.client.post(
        "/keys", json={"name": "ci-bot", "grants": ["connectors:read"]}, headers=gate.admin
    )
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["key_id"]

    assert gate.client.get("/connectors", headers={"X-API-Key": key}).status_code == 200
    assert gate.client.get("/connectors", headers=bearer(key)).status_code == 200  # a key as bearer too
    assert gate.client.delete("/connectors/pg1", headers=bearer(key)).status_code == 403
    revoked = gate.client.delete(f"/keys/{key_id}", headers=gate.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True

    refused = gate.client.get("/connectors", headers={"X-API-Key": key})
    assert refused.status_code == 401 and key not in refused.text


def test_a_key_s_secret_is_shown_once_and_redis_holds_only_its_hash(gate: Gate) -> None:
    created = gate.client.post("/keys", json={"name": "secret-keeper"}, headers=gate.admin).json()
    secret = secret_of(created["key"])

    listing = gate.client.get("/keys", headers=gate.admin)
    stored = redis_dump(gate.redis_url)
    gate.client.get("/connectors", headers={"X-API-Key": created["key"]})  # verified and cached
    cache = gate.client.app.state.auth._key_cache  # type: ignore[attr-defined]

    assert listing.status_code == 200 and created["key_id"] in listing.text
    assert secret not in listing.text and "key" not in listing.json()[0] and "digest" not in listing.text
    assert secret not in stored and hashlib.sha256(secret.encode()).hexdigest() in stored
    assert hashlib.sha256(created["key"].encode()).hexdigest() in cache
    assert not any(secret in entry for entry in cache)


def test_principals_and_roles_set_through_the_admin_api_take_effect(gate: Gate) -> None:
    token = gate.jwks.token("erin")  # no grants of its own
    assert gate.client.get("/connectors", headers=bearer(token)).status_code == 403

    assert gate.client.put(
        "/access/roles/lister", json={"grants": ["connectors:read"]}, headers=gate.admin
    ).is_success
    put = gate.client.put("/access/principals/erin", json={"roles": ["lister"]}, headers=gate.admin)
    assert put.status_code == 200
    assert gate.client.get("/access/principals/erin", headers=gate.admin).json()["roles"] == ["lister"]
    assert "erin" in gate.client.get("/access/principals", headers=gate.admin).json()
    time.sleep(2.1)  # the fleet's principal cache (scf.fleet.access.CACHE_SECONDS)

    assert gate.client.get("/connectors", headers=bearer(token)).status_code == 200
    assert gate.client.delete("/access/principals/erin", headers=gate.admin).status_code == 200
    bad = gate.client.put("/access/roles/x", json={"grants": ["root:everything"]}, headers=gate.admin)
    assert bad.status_code == 422


def test_the_policy_file_adds_to_a_key_s_and_a_token_s_grants(gate: Gate) -> None:
    reader = make_key(gate.redis_url, "role-holder", [], roles=["reader"])  # the policy's role
    alice = gate.jwks.token("alice")  # no scope: the policy gives her metrics:read

    assert gate.client.get("/connectors", headers={"X-API-Key": reader}).status_code == 200
    assert gate.client.get("/metrics/prometheus", headers={"X-API-Key": reader}).status_code == 403
    assert gate.client.get("/metrics/prometheus", headers=bearer(alice)).status_code == 200
    assert gate.client.get("/connectors", headers=bearer(alice)).status_code == 403


@pytest.mark.parametrize(
    "why",
    [
        "wrong audience",
        "wrong issuer",
        "not yet valid",
        "no exp",
        "alg none",
        "HS256 with the public key",
        "unknown kid",
        "tampered",
        "subject too long",
        "not a jwt",
        "huge",
    ],
)
def test_a_bearer_token_must_be_exactly_right(gate: Gate, why: str) -> None:
    jwks = gate.jwks
    public_pem = jwks.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = jwks.token("alice", "*")
    forgeries: dict[str, Callable[[], str]] = {
        "wrong audience": lambda: jwks.token("alice", "*", aud="someone-else"),
        "wrong issuer": lambda: jwks.token("alice", "*", iss="https://evil.test"),
        "not yet valid": lambda: jwks.token("alice", "*", nbf=time.time() + 3600),
        "no exp": lambda: jwt.encode(
            {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE}, jwks.rsa, "RS256", headers={"kid": "rsa-1"}
        ),
        "alg none": lambda: _handmade("none", b""),
        "HS256 with the public key": lambda: _handmade("HS256", public_pem),
        "unknown kid": lambda: jwks.token("alice", "*", kid="nope"),
        "tampered": lambda: good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
        "subject too long": lambda: jwks.token("a" * 129, "*"),
        "not a jwt": lambda: "definitely.not.a-jwt",
        "huge": lambda: "x" * 9_000,  # past MAX_TOKEN_CHARS, within the header limit
    }
    token = forgeries[why]()

    response = gate.client.get("/connectors", headers=bearer(token))

    assert response.status_code == 401, why
    assert response.headers["www-authenticate"] == "Bearer"
    assert token[:40] not in response.text


def _handmade(alg: str, hmac_key: bytes) -> str:
    """A token PyJWT refuses to make: unsigned (`none`), or the classic confusion, an HMAC keyed with
    the RSA public key."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = {"sub": "alice", "scope": "*", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 60}
    body = b64(json.dumps(claims).encode())
    if alg == "none":
        return f"{header}.{body}."
    signature = hmac.new(hmac_key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def test_es256_tokens_and_list_claims_are_accepted(gate: Gate) -> None:
    token = gate.jwks.token("frank", ["openid", "connectors:read", "not:a-grant"], alg="ES256")

    assert gate.client.get("/connectors", headers=bearer(token)).status_code == 200
    assert gate.client.post("/connectors/pg1/pause", headers=bearer(token)).status_code == 403


def test_two_credentials_or_another_scheme_are_refused(gate: Gate) -> None:
    both = {**gate.admin, **bearer(gate.jwks.token("alice", "*"))}
    basic = {"Authorization": "Basic YWxpY2U6cHc="}

    assert gate.client.get("/keys", headers=both).status_code == 401
    assert gate.client.get("/keys", headers=basic).status_code == 401
    assert gate.client.get("/keys", headers={"X-API-Key": "not-a-key"}).status_code == 401


def test_the_audit_line_names_the_principal(gate: Gate) -> None:
    with structlog.testing.capture_logs() as logs:
        gate.client.get("/connectors", headers=bearer(gate.jwks.token("grace", "connectors:read")))
        gate.client.get("/keys", headers=bearer(gate.jwks.token("grace", "connectors:read")))

    audits = [line for line in logs if line["event"] == "audit"]
    assert [(a["user"], a["outcome"]) for a in audits] == [("jwt:grace", 200), ("jwt:grace", 403)]


def test_openapi_declares_the_schemes_and_which_routes_need_them(gate: Gate) -> None:
    document = gate.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    operations = {(m.upper(), p): op for p, item in document["paths"].items() for m, op in item.items()}

    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"]["scheme"] == "bearer" and schemes["Bearer"]["bearerFormat"] == "JWT"
    assert schemes["OpenIdConnect"]["openIdConnectUrl"] == f"{ISSUER}/.well-known/openid-configuration"
    for route in (("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/asyncapi.json")):
        assert "security" not in operations[route]
    protected = [op for route, op in operations.items() if ROUTES[route] != OPEN]
    assert len(protected) == 28
    assert all({"ApiKey": []} in op["security"] and {"Bearer": []} in op["security"] for op in protected)


def test_with_auth_off_every_route_is_open_as_before(tmp_path: Path) -> None:
    db = claim_redis_db()
    try:
        settings = Settings(scf_auth="off", scf_redis_url=db.url, scf_secret_key=SECRET_KEY)
        with serving(app_with(settings, StubFleet())) as client:
            assert client.get("/connectors").status_code == 200
            assert client.get("/connectors", headers={"Authorization": "Basic x"}).status_code == 200
            assert client.post("/keys", json={"name": "k"}).status_code == 201
    finally:
        db.release()


def test_scf_keys_create_list_and_revoke_on_redis(gate: Gate) -> None:
    env = {"SCF_REDIS_URL": gate.redis_url, "SCF_SECRET_KEY": SECRET_KEY}
    runner = CliRunner()

    created = runner.invoke(
        main, ["keys", "create", "cli-bot", "--grant", "connectors:read", "--expires-in", "600"], env=env
    )
    assert created.exit_code == 0, created.output
    key = created.output.rsplit("key (shown once, store it now): ", 1)[1].strip()
    key_id = key.split("_")[1]
    assert created.output.count(key) == 1
    assert gate.client.get("/connectors", headers={"X-API-Key": key}).status_code == 200

    listed = runner.invoke(main, ["keys", "list"], env=env)
    assert listed.exit_code == 0 and key_id in listed.output and secret_of(key) not in listed.output

    revoked = runner.invoke(main, ["keys", "revoke", key_id], env=env)
    assert revoked.exit_code == 0 and '"revoked": true' in revoked.output
    gate.client.app.state.auth.forget_keys()  # type: ignore[attr-defined]  # (else: within 5 s)
    assert gate.client.get("/connectors", headers={"X-API-Key": key}).status_code == 401

    bad = runner.invoke(main, ["keys", "create", "x", "--grant", "root:all"], env=env)
    unknown = runner.invoke(main, ["keys", "revoke", "00000000000000aa"], env=env)
    assert bad.exit_code == 2 and "unknown permission" in bad.output
    assert unknown.exit_code == 1 and "NOT_FOUND" in unknown.output


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certfile, keyfile


async def test_the_gateway_binds_loopback_by_default_and_serves_tls_when_given_both_files(
    tmp_path: Path,
) -> None:
    db = claim_redis_db()
    certfile, keyfile = _self_signed(tmp_path)
    settings = Settings(
        scf_auth="off",
        scf_redis_url=db.url,
        scf_secret_key=SECRET_KEY,
        service_connector_factory_port=free_port(),
        scf_tls_certfile=certfile,
        scf_tls_keyfile=keyfile,
    )
    server = GatewayServer(settings, app=app_with(settings, StubFleet()))
    await server.start()
    try:
        bound = {sock.getsockname()[0] for s in server._server.servers for sock in s.sockets}
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=certfile)) as client:
            answer = await client.get(f"https://127.0.0.1:{server.port}/healthz")
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://127.0.0.1:{server.port}/healthz")  # no plain HTTP on it
    finally:
        await server.stop(grace=1)
        db.release()

    assert bound == {"127.0.0.1"}  # SCF_GATEWAY_HOST's default: loopback, not every interface
    assert answer.status_code == 200 and answer.json() == {"status": "alive"}
    with pytest.raises(ValueError, match="both"):
        GatewayServer(Settings(scf_tls_certfile=certfile), app=app_with(settings, StubFleet()))


def test_tokens_naming_unknown_keys_do_not_hammer_the_jwks(gate: Gate) -> None:
    assert gate.client.get("/connectors", headers=bearer(gate.jwks.token("alice", "*"))).status_code == 200
    before = gate.jwks.fetches

    for n in range(20):
        refused = gate.client.get(
            "/connectors", headers=bearer(gate.jwks.token("alice", "*", kid=f"made-up-{n}"))
        )
        assert refused.status_code == 401

    assert gate.jwks.fetches - before <= 1  # at most one refresh per JWKS_MIN_REFRESH (30 s)
