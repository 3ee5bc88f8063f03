"""Bearer JWTs from an OpenID Connect provider: signature (JWKS), `exp`, `nbf`, `iss`, `aud`, and grants.

Only asymmetric algorithms from an explicit allow-list are accepted (RS256, ES256): never `none`, never
an HS* algorithm keyed with a public key. The JWKS is fetched with httpx (async, a timeout, a size
bound), kept for `JWKS_MAX_AGE` seconds, and fetched again for an unknown `kid` at most once per
`JWKS_MIN_REFRESH` seconds (so tokens naming made-up keys cannot hammer the provider).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import jwt
import structlog

from scf.fleet.access import unauthenticated
from scf.schemas.access import Grant, parse_grant

log = structlog.get_logger("scf.access")

#: algorithm -> the JWK key type it must be verified with
ALGORITHMS: dict[str, str] = {"RS256": "RSA", "ES256": "EC"}
MAX_TOKEN_CHARS = 8192
MAX_JWKS_BYTES = 1024 * 1024
MAX_CLAIM_CHARS = 16_384
MAX_CLAIM_GRANTS = 256
JWKS_MAX_AGE = 300.0
JWKS_MIN_REFRESH = 30.0
JWKS_TIMEOUT = 5.0
LEEWAY = 30
#: a subject: 1-128 printable ASCII characters, no spaces (it names the principal in logs and headers)
SUBJECT = re.compile(r"[\x21-\x7e]{1,128}")


class JwtVerifier:
    """Verifies bearer tokens against one issuer's JWKS; answers the subject and the granted grants."""

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        audience: str,
        grants_claim: str = "scope",
        *,
        min_refresh: float = JWKS_MIN_REFRESH,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.grants_claim = grants_claim
        self.min_refresh = min_refresh
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -1e9
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=JWKS_TIMEOUT, follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> tuple[str, frozenset[Grant]]:
        """(subject, grants) of a valid token; raises SecurityError UNAUTHENTICATED otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise unauthenticated("bearer token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthenticated("bearer token is not a JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise unauthenticated("bearer token algorithm not allowed")
        key = await self._key(header.get("kid"), alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise unauthenticated(f"bearer token refused: {type(exc).__name__}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
            raise unauthenticated("bearer token subject is not 1-128 printable characters")
        return subject, grants_from_claim(claims.get(self.grants_claim))

    async def _key(self, kid: Any, alg: str) -> jwt.PyJWK:
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise unauthenticated("bearer token key id is malformed")
        found = self._pick(kid, alg)
        stale = time.monotonic() - self._fetched_at
        if (found is None and stale >= self.min_refresh) or stale >= JWKS_MAX_AGE:
            await self._refresh()
            found = self._pick(kid, alg)
        if found is None:
            raise unauthenticated("bearer token signed by an unknown key")
        return found

    def _pick(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is not None:
            candidates = [self._keys[kid]] if kid in self._keys else []
        else:
            candidates = list(self._keys.values())
        usable = [k for k in candidates if k.key_type == ALGORITHMS[alg] and k.algorithm_name == alg]
        return usable[0] if len(usable) == 1 else None

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < min(self.min_refresh, JWKS_MAX_AGE):
                return  # another request fetched it meanwhile
            self._fetched_at = time.monotonic()
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("jwks_fetch_failed", url=self.jwks_url, error=type(exc).__name__)
                raise unauthenticated("the JWKS could not be read") from None

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        async with self._http.stream("GET", self.jwks_url) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("the JWKS is larger than 1 MiB")
        document = json.loads(bytes(body))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS has no keys list")
        keys: dict[str, jwt.PyJWK] = {}
        for index, raw in enumerate(document["keys"][:100]):
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue
            algorithm = raw.get("alg") or {"RSA": "RS256", "EC": "ES256"}.get(str(raw.get("kty")))
            if algorithm not in ALGORITHMS:
                continue
            try:
                key = jwt.PyJWK(raw, algorithm=algorithm)
            except jwt.PyJWTError:
                continue
            keys[str(raw.get("kid") or f"#{index}")] = key
        return keys


def grants_from_claim(value: Any) -> frozenset[Grant]:
    """The valid grants in a claim (a space-separated string or a list); anything else grants nothing."""
    if isinstance(value, str):
        items: list[Any] = value[:MAX_CLAIM_CHARS].split()[:MAX_CLAIM_GRANTS]
    elif isinstance(value, list):
        items = value[:MAX_CLAIM_GRANTS]
    else:
        return frozenset()
    found = set()
    for item in items:
        if isinstance(item, str):
            try:
                found.add(parse_grant(item))
            except ValueError:
                continue  # an OIDC scope such as `openid` is no grant
    return frozenset(found)
