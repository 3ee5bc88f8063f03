"""Authenticators, JWT signing and the OAuth2 token cache, without a network (a fake token endpoint)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from scf.connectors.api.auth import build_authenticator
from scf.connectors.api.jwt_bearer import JwtSigner, encode_jwt
from scf.connectors.api.oauth2 import TokenCache, parse_token_reply, token_request
from scf.connectors.web.bodies import FetchedBody
from scf.connectors.web.redaction import Redactor
from scf.schemas.configs.api import ApiConfig, OAuth2ClientCredentialsAuth
from scf.schemas.configs.api_signed import JwtAuth
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import PermanentError, ResourceError, SecurityError

SECRET = "auth-canary-secret-0d4c-32-bytes-at-least"  # PyJWT warns under 32 for HS256


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header, claims, signature = token.split(".")
    return (
        json.loads(b64url_decode(header)),
        json.loads(b64url_decode(claims)),
        f"{header}.{claims}".encode(),
        b64url_decode(signature),
    )


def reply(status: int, body: Any) -> FetchedBody:
    return FetchedBody(
        status, httpx.Headers(), json.dumps(body).encode(), httpx.URL("https://auth.example/token")
    )


def connection(auth: dict[str, Any] | None = None, **fields: Any) -> ServiceConnection:
    custom: dict[str, Any] = {"base_url": "https://api.example.com"}
    if auth is not None:
        custom["auth"] = auth
    return ServiceConnection.parse(
        {"service_type": "api", "service_name": "a", "custom_config": custom, **fields}
    )


async def no_token_endpoint(url: str, form: dict[str, str], headers: dict[str, str]) -> FetchedBody:
    raise AssertionError("no token endpoint in this test")


async def applied(auth: dict[str, Any] | None, **fields: Any) -> httpx.Request:
    conn = connection(auth, **fields)
    config = ApiConfig.model_validate(conn.custom_config)
    authenticator = build_authenticator(config.auth, conn, no_token_endpoint)
    return await authenticator.apply(httpx.Request("GET", "https://api.example.com/items?x=1"))


async def test_static_credentials_land_where_configured() -> None:
    basic = await applied(None, username="u", password=SECRET)
    header_key = await applied({"type": "api_key", "api_key": SECRET, "name": "X-Key", "prefix": "Key "})
    query_key = await applied({"type": "api_key", "api_key": "k y", "name": "key", "location": "query"})
    bearer = await applied({"type": "bearer", "token": SECRET})

    assert basic.headers["authorization"] == "Basic " + base64.b64encode(f"u:{SECRET}".encode()).decode()
    assert header_key.headers["x-key"] == f"Key {SECRET}"
    assert query_key.url.params["key"] == "k y" and query_key.url.params["x"] == "1"
    assert bearer.headers["authorization"] == f"Bearer {SECRET}"


async def test_sigv4_signs_the_request() -> None:
    request = await applied(
        {"type": "aws_sigv4", "access_key_id": "AKID", "secret_access_key": SECRET, "region": "eu-west-1"}
    )

    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert "x-amz-date" in request.headers
    assert SECRET not in str(request.headers)


def test_hs256_tokens_verify_with_the_shared_secret() -> None:
    signer = JwtSigner(
        JwtAuth(type="jwt", secret=SECRET, issuer="scf", audience="api", claims={"exp": 1, "x": 2})
    )

    header, claims, signing_input, signature = decode(signer.token())

    assert header == {"alg": "HS256", "typ": "JWT"}
    assert hmac.compare_digest(signature, hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())
    assert claims["iss"] == "scf" and claims["aud"] == "api" and claims["x"] == 2
    assert claims["exp"] == claims["iat"] + 300  # configured claims cannot stretch the lifetime


def test_rs256_tokens_verify_with_the_public_key() -> None:
    key = rsa.generate_private_key(65537, 2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = JwtSigner(JwtAuth(type="jwt", algorithm="RS256", private_key_pem=pem, key_id="k1"))

    header, _, signing_input, signature = decode(signer.token())

    assert header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())


def test_a_jwt_is_reused_until_half_its_lifetime() -> None:
    now = [1000.0]
    signer = JwtSigner(JwtAuth(type="jwt", secret=SECRET, ttl=60), clock=lambda: now[0])

    first = signer.token()
    now[0] += 29
    same = signer.token()
    now[0] += 2
    renewed = signer.token()

    assert first == same != renewed


def test_encode_jwt_refuses_a_key_of_the_wrong_kind() -> None:
    with pytest.raises(ValueError):
        encode_jwt({}, algorithm="RS256", key=b"secret")


OAUTH = OAuth2ClientCredentialsAuth(
    type="oauth2_client_credentials",
    token_url="https://auth.example/token",
    client_id="id:1",
    client_secret=SECRET,
    scope="read",
)


def test_the_token_request_authenticates_the_client_per_rfc_6749() -> None:
    form, headers = token_request(OAUTH)
    body_form, body_headers = token_request(OAUTH.model_copy(update={"client_auth": "body"}))

    assert form == {"grant_type": "client_credentials", "scope": "read"}
    assert base64.b64decode(headers["Authorization"].removeprefix("Basic ")) == f"id%3A1:{SECRET}".encode()
    assert body_form["client_secret"] == SECRET and "Authorization" not in body_headers


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_client"}, SecurityError),
        (401, {"error": "invalid_client"}, SecurityError),
        (400, {"error": "invalid_scope"}, SecurityError),
        (400, {"error": "invalid_request"}, PermanentError),
        (429, {}, ResourceError),
        (200, {"token_type": "bearer"}, PermanentError),
        (200, {"access_token": "t", "token_type": "mac"}, PermanentError),
    ],
)
def test_token_endpoint_failures_are_typed(status: int, body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_token_reply(reply(status, body), now=0, margin=30, redact=Redactor(), where="u")


def test_tokens_expire_a_margin_early() -> None:
    long = parse_token_reply(
        reply(200, {"access_token": "tok-canary", "expires_in": 3600}),
        now=0,
        margin=30,
        redact=Redactor(),
        where="u",
    )
    short = parse_token_reply(
        reply(200, {"access_token": "t", "expires_in": 10}), now=0, margin=30, redact=Redactor(), where="u"
    )
    endless = parse_token_reply(
        reply(200, {"access_token": "t"}), now=0, margin=30, redact=Redactor(), where="u"
    )

    assert (long.expires_at, short.expires_at, endless.expires_at) == (3570, 5, None)
    assert "tok-canary" not in repr(long)


async def test_the_cache_fetches_once_refreshes_when_stale_and_after_a_refusal() -> None:
    now = [0.0]
    issued: list[str] = []

    async def token_endpoint(url: str, form: dict[str, str], headers: dict[str, str]) -> FetchedBody:
        issued.append(f"tok-{len(issued)}")
        return reply(200, {"access_token": issued[-1], "expires_in": 100})

    cache = TokenCache(OAUTH, token_endpoint, clock=lambda: now[0])

    first = await cache.token()
    again = await cache.token()
    now[0] = 71
    stale = await cache.token()
    cache.invalidate("tok-0")  # an old refusal does not drop the newer token
    kept = await cache.token()
    cache.invalidate(kept)
    refreshed = await cache.token()

    assert (first, again, stale, kept, refreshed) == ("tok-0", "tok-0", "tok-1", "tok-1", "tok-2")
    assert cache.fetches == 3
