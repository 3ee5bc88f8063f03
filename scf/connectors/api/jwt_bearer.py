"""JSON Web Tokens signed here (RFC 7519) with PyJWT: HMAC (HS256/384/512) with a shared `secret`, or
RSA (RS*, PS*), ECDSA (ES256/384/512) and EdDSA with a PEM `private_key_pem`.

Claims: iat, nbf, exp (iat + ttl), a random jti, plus iss/sub/aud and extra claims when configured.
A signed token is reused until half its lifetime has passed, so every request carries a fresh one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from scf.schemas.configs.api_signed import HMAC_ALGORITHMS, JwtAuth
from scf.schemas.errors import ConfigurationError, ErrorCode

#: Claims the signer sets itself; configured `claims` cannot override them.
REGISTERED_CLAIMS = frozenset({"iat", "nbf", "exp", "jti", "iss", "sub", "aud"})

PrivateKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)

#: The private key each asymmetric algorithm signs with (and the curve, for ECDSA: RFC 7518 3.4).
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}


def _fits(algorithm: str, key: object) -> bool:
    if algorithm[:2] in ("RS", "PS"):
        return isinstance(key, rsa.RSAPrivateKey)
    if algorithm in _CURVES:
        return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _CURVES[algorithm])
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    return False


def encode_jwt(
    claims: Mapping[str, Any], *, algorithm: str, key: bytes | PrivateKey, key_id: str | None = None
) -> str:
    """The signed token; ValueError for a key that does not fit the algorithm."""
    if algorithm in HMAC_ALGORITHMS:
        if not isinstance(key, bytes):
            raise ValueError(f"cannot sign {algorithm} with a {type(key).__name__}")
    elif not _fits(algorithm, key):
        raise ValueError(f"cannot sign {algorithm} with a {type(key).__name__}")
    headers = {"kid": key_id} if key_id is not None else None
    return jwt.encode(dict(claims), key, algorithm=algorithm, headers=headers)


def load_signing_key(config: JwtAuth) -> bytes | PrivateKey:
    """The key as configured; `configuration` error for a PEM that is not a private key of the
    algorithm's kind (an RSA key for RS*/PS*, a key on the right curve for ES*, Ed25519/Ed448 for EdDSA)."""
    if config.algorithm in HMAC_ALGORITHMS:
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
    if not _fits(config.algorithm, key):
        raise ConfigurationError(
            f"{config.algorithm} cannot sign with this private key ({type(key).__name__})",
            code=ErrorCode.INVALID_CONFIG,
        )
    assert isinstance(key, PrivateKey)
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
