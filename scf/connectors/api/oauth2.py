"""OAuth 2.0 client credentials (RFC 6749 §4.4): the token request, its reply, and a per-connector cache.

The token is cached until `expires_in` minus a margin (without `expires_in`, until the API answers
401); one lock makes concurrent requests share a single token fetch. The token endpoint is reached
through the same SSRF guard as the API, and its replies never leak the client secret.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from scf.connectors.web.bodies import FetchedBody
from scf.connectors.web.errors import status_error
from scf.connectors.web.policy import safe_url
from scf.connectors.web.redaction import Redactor
from scf.schemas.configs.api import OAuth2ClientCredentialsAuth
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError, SecurityError

#: (token_url, form fields, headers) -> the token endpoint's reply.
TokenFetcher = Callable[[str, dict[str, str], dict[str, str]], Awaitable[FetchedBody]]

#: RFC 6749 §5.2 error codes that mean "these client credentials do not work".
_CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float | None  # monotonic clock; None: until the API refuses it

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


def token_request(config: OAuth2ClientCredentialsAuth) -> tuple[dict[str, str], dict[str, str]]:
    """The form and headers of the token request; client authentication per `client_auth`."""
    form = {"grant_type": "client_credentials"}
    if config.scope:
        form["scope"] = config.scope
    if config.audience:
        form["audience"] = config.audience
    headers = {"Accept": "application/json"}
    secret = config.client_secret.get_secret_value()
    if config.client_auth == "basic":  # §2.3.1: each part form-encoded before base64
        pair = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        form.update({"client_id": config.client_id, "client_secret": secret})
    return form, headers


def parse_token_reply(
    reply: FetchedBody, *, now: float, margin: float, redact: Redactor, where: str
) -> AccessToken:
    """The access token of a 200 reply; a typed error otherwise (bad credentials are `security`)."""
    if reply.status_code != 200:
        raise _token_error(reply, redact, where)
    body: Any = reply.json()
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise PermanentError(
            "the token endpoint answered without an access_token", code=ErrorCode.INVALID_DATA
        )
    token_type = str(body.get("token_type") or "bearer").lower()
    if token_type != "bearer":  # noqa: S105 - a token type, not a password
        raise PermanentError(
            f"the token endpoint issued a {token_type[:20]!r} token; only bearer tokens are supported",
            code=ErrorCode.INVALID_DATA,
        )
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return AccessToken(token, now + max(float(expires_in) - margin, float(expires_in) / 2))
    return AccessToken(token, None)


def _token_error(reply: FetchedBody, redact: Redactor, where: str) -> ConnectorError:
    code = None
    if reply.status_code == 400:
        try:
            body = reply.json()
        except PermanentError:
            body = None
        code = body.get("error") if isinstance(body, dict) else None
    if code in _CREDENTIAL_ERRORS:
        return SecurityError(
            "the token endpoint refused the client credentials",
            code=ErrorCode.AUTHENTICATION_FAILED,
            detail=f"OAuth2 error {code} from {where}",
        )
    if code == "invalid_scope":
        return SecurityError(
            "the token endpoint refused the scope", code=ErrorCode.PERMISSION_DENIED, detail=where
        )
    return status_error(reply.status_code, reply.headers, reply.content, redact, where)


class TokenCache:
    """One client's access token: fetched on first use, shared, replaced when stale or refused."""

    def __init__(
        self,
        config: OAuth2ClientCredentialsAuth,
        fetcher: TokenFetcher,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._fetcher = fetcher
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        self.redact = Redactor([config.client_secret.get_secret_value()])

    @property
    def current(self) -> str | None:
        return self._token.value if self._token is not None else None

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or not self._token.fresh(self._clock()):
                self._token = await self._fetch()
            return self._token.value

    def invalidate(self, refused: str) -> None:
        """Forget `refused` (unless another request already replaced it)."""
        if self._token is not None and self._token.value == refused:
            self._token = None

    async def _fetch(self) -> AccessToken:
        form, headers = token_request(self._config)
        reply = await self._fetcher(self._config.token_url, form, headers)
        self.fetches += 1
        token = parse_token_reply(
            reply,
            now=self._clock(),
            margin=self._config.expiry_margin,
            redact=self.redact,
            where=safe_url(self._config.token_url),
        )
        self.redact = self.redact.plus([token.value])
        return token
