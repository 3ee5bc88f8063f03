"""Authenticators: add one configured credential to a request (the spec's Authentication Methods).

Basic, API key (header or query), bearer, OAuth2 client credentials, JWT bearer and AWS SigV4 change
the request; mTLS works in the TLS context (`tls_files`). Each lists its secret values so the
connector can mask them in every message, and the header names to drop on a cross-origin redirect.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from scf.connectors.api.jwt_bearer import JwtSigner
from scf.connectors.api.oauth2 import TokenCache, TokenFetcher
from scf.connectors.api.sigv4 import AwsSigner, aws_query
from scf.schemas.configs.api import (
    ApiAuth,
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    MtlsAuth,
    OAuth2ClientCredentialsAuth,
)
from scf.schemas.configs.api_signed import AwsSigV4Auth, JwtAuth
from scf.schemas.connection import ServiceConnection


class Authenticator:
    """No credentials. Subclasses override `apply` and say what is secret."""

    method = "none"
    sensitive_headers: frozenset[str] = frozenset()

    async def apply(self, request: httpx.Request) -> httpx.Request:
        return request

    def secrets(self) -> list[str]:
        return []

    def refresh_after_refusal(self, request: httpx.Request) -> bool:
        """Forget a credential the API refused with 401; True if a retry could use a new one."""
        return False


class HeaderAuthenticator(Authenticator):
    """A fixed header: basic (`Authorization: Basic ...`), bearer, or an API key header."""

    def __init__(self, method: str, name: str, value: str, secret: str) -> None:
        self.method = method
        self._name, self._value, self._secret = name, value, secret
        self.sensitive_headers = frozenset({name.lower()})

    async def apply(self, request: httpx.Request) -> httpx.Request:
        request.headers[self._name] = self._value
        return request

    def secrets(self) -> list[str]:
        return [self._secret, self._value]


class QueryKeyAuthenticator(Authenticator):
    method = "api_key"

    def __init__(self, param: str, key: str) -> None:
        self._param, self._key = param, key

    async def apply(self, request: httpx.Request) -> httpx.Request:
        request.url = request.url.copy_set_param(self._param, self._key)
        return request

    def secrets(self) -> list[str]:
        return [self._key, httpx.QueryParams({"k": self._key}).get("k", "")]


class OAuth2Authenticator(Authenticator):
    method = "oauth2_client_credentials"
    sensitive_headers = frozenset({"authorization"})

    def __init__(self, cache: TokenCache) -> None:
        self.cache = cache

    async def apply(self, request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {await self.cache.token()}"
        return request

    def secrets(self) -> list[str]:
        return [s for s in (self.cache.current,) if s]

    def refresh_after_refusal(self, request: httpx.Request) -> bool:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.cache.invalidate(sent)
        return True


class JwtAuthenticator(Authenticator):
    method = "jwt"
    sensitive_headers = frozenset({"authorization"})

    def __init__(self, signer: JwtSigner) -> None:
        self._signer = signer

    async def apply(self, request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {self._signer.token()}"
        return request

    def secrets(self) -> list[str]:
        return [s for s in (self._signer.current,) if s]


class SigV4Authenticator(Authenticator):
    """Signs the final request (URL, content-type, body); re-encodes the query exactly as signed."""

    method = "aws_sigv4"
    sensitive_headers = frozenset({"authorization", "x-amz-security-token"})

    def __init__(self, config: AwsSigV4Auth) -> None:
        self._signer = AwsSigner(config)

    async def apply(self, request: httpx.Request) -> httpx.Request:
        if request.url.query:
            request.url = request.url.copy_with(query=aws_query(request.url).encode("ascii"))
        request.headers.update(
            await self._signer.sign(request.method, request.url, request.headers, request.content)
        )
        return request

    def secrets(self) -> list[str]:
        return self._signer.secrets()


class MtlsAuthenticator(Authenticator):
    """The client certificate is presented in the TLS handshake; requests stay unchanged."""

    method = "mtls"


@dataclass(frozen=True)
class TlsFiles:
    """The client certificate of `mtls` auth, for the TLS context."""

    cert_file: str
    key_file: str | None
    key_password: str | None


def tls_files(auth: ApiAuth | None) -> TlsFiles | None:
    if not isinstance(auth, MtlsAuth):
        return None
    password = auth.key_password.get_secret_value() if auth.key_password else None
    return TlsFiles(auth.cert_file, auth.key_file, password)


def basic_value(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def build_authenticator(
    auth: ApiAuth | None, connection: ServiceConnection, fetch_token: TokenFetcher
) -> Authenticator:
    """The authenticator for the configured method (the connection's username/password mean basic)."""
    if isinstance(auth, BasicAuth) or (auth is None and connection.username):
        username = (auth.username if isinstance(auth, BasicAuth) else None) or connection.username or ""
        given = auth.password if isinstance(auth, BasicAuth) else None
        password = given.get_secret_value() if given is not None else connection.secret_password() or ""
        return HeaderAuthenticator("basic", "Authorization", basic_value(username, password), password)
    if isinstance(auth, ApiKeyAuth):
        key = auth.api_key.get_secret_value()
        if auth.location == "query":
            return QueryKeyAuthenticator(auth.name, key)
        return HeaderAuthenticator("api_key", auth.name, auth.prefix + key, key)
    if isinstance(auth, BearerAuth):
        token = auth.token.get_secret_value()
        return HeaderAuthenticator("bearer", "Authorization", f"Bearer {token}", token)
    if isinstance(auth, OAuth2ClientCredentialsAuth):
        return OAuth2Authenticator(TokenCache(auth, fetch_token))
    if isinstance(auth, JwtAuth):
        return JwtAuthenticator(JwtSigner(auth))
    if isinstance(auth, AwsSigV4Auth):
        return SigV4Authenticator(auth)
    if isinstance(auth, MtlsAuth):
        return MtlsAuthenticator()
    return Authenticator()
