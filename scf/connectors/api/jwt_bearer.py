"""JSON Web Tokens signed here (RFC 7519): HS256 with hmac, RS256 with `cryptography` (pure).

Claims: iat, nbf, exp (iat + ttl), a random jti, plus iss/sub/aud and extra claims when configured.
A signed token is reused until half its lifetime has passed, so every request carries a fresh one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from scf.schemas.configs.api import JwtAuth
from scf.schemas.errors import ConfigurationError, ErrorCode

#: Claims the signer sets itself; configured `claims` cannot override them.
REGISTERED_CLAIMS = frozenset({"iat", "nbf", "exp", "jti", "iss", "sub", "aud"})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def encode_jwt(
    claims: Mapping[str, Any], *, algorithm: str, key: bytes | rsa.RSAPrivateKey, key_id: str | None = None
) -> str:
    header: dict[str, Any] = {"alg": algorithm, "typ": "JWT"}
    if key_id is not None:
        header["kid"] = key_id
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}".encode("ascii")
    if algorithm == "HS256" and isinstance(key, bytes):
        signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    elif algorithm == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"cannot sign {algorithm} with a {type(key).__name__}")
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def load_signing_key(config: JwtAuth) -> bytes | rsa.RSAPrivateKey:
    """The key as configured; `configuration` error for a PEM that is not an RSA private key."""
    if config.algorithm == "HS256":
        assert config.secret is not None  # the config model guarantees it
        return config.secret.get_secret_value().encode("utf-8")
    assert config.private_key_pem is not None
    try:
        key = serialization.load_pem_private_key(
            config.private_key_pem.get_secret_value().encode("utf-8"), password=None
        )
    except (ValueError, TypeError):
        raise ConfigurationError(
            "custom_config.auth.private_key_pem is not an unencrypted PEM private key",
            code=ErrorCode.INVALID_CONFIG,
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("RS256 needs an RSA private key", code=ErrorCode.INVALID_CONFIG)
    return key


class JwtSigner:
    """Signs the configured claims; reuses a token until half its `ttl` has passed."""

    def __init__(self, config: JwtAuth, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._key = load_signing_key(config)
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0

    def claims(self, now: int) -> dict[str, Any]:
        config = self._config
        claims = {k: v for k, v in config.claims.items() if k not in REGISTERED_CLAIMS}
        claims.update({"iat": now, "nbf": now, "exp": now + config.ttl, "jti": uuid.uuid4().hex})
        for name, value in (("iss", config.issuer), ("sub", config.subject), ("aud", config.audience)):
            if value is not None:
                claims[name] = value
        return claims

    @property
    def current(self) -> str | None:
        return self._token

    def token(self) -> str:
        now = self._clock()
        if self._token is None or now >= self._renew_at:
            issued = int(now)
            self._token = encode_jwt(
                self.claims(issued),
                algorithm=self._config.algorithm,
                key=self._key,
                key_id=self._config.key_id,
            )
            self._renew_at = issued + self._config.ttl / 2
        return self._token
