"""The API connector's JWT bearer auth signs with every algorithm PyJWT offers that fits a configured
key: each token verifies with the matching public key (keys generated here), a key of the wrong kind
is a configuration error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from scf.connectors.api.jwt_bearer import JwtSigner
from scf.schemas.configs.api_signed import JwtAuth
from scf.schemas.errors import ConfigurationError

KeyMaker = Callable[[], Any]

RSA: KeyMaker = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
KEYS: dict[str, KeyMaker] = {
    "RS384": RSA,
    "PS256": RSA,
    "PS512": RSA,
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ES512": lambda: ec.generate_private_key(ec.SECP521R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


def pem(key: Any) -> str:
    raw: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return raw.decode()


@pytest.mark.parametrize("algorithm", sorted(KEYS))
def test_asymmetric_tokens_verify_with_the_public_key(algorithm: str) -> None:
    key = KEYS[algorithm]()
    signer = JwtSigner(
        JwtAuth(type="jwt", algorithm=algorithm, private_key_pem=pem(key), audience="api", key_id="k9")
    )
    token = signer.token()
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT", "kid": "k9"}
    claims = jwt.decode(token, key.public_key(), algorithms=[algorithm], audience="api")
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_hmac_tokens_verify_with_the_secret(algorithm: str) -> None:
    secret = "s" * 64
    token = JwtSigner(JwtAuth(type="jwt", algorithm=algorithm, secret=secret)).token()
    assert jwt.decode(token, secret, algorithms=[algorithm])["jti"]


@pytest.mark.parametrize(
    ("algorithm", "wrong"),
    [("ES256", RSA), ("ES384", KEYS["ES256"]), ("RS256", KEYS["EdDSA"]), ("EdDSA", KEYS["ES256"])],
)
def test_a_key_of_the_wrong_kind_is_a_configuration_error(algorithm: str, wrong: KeyMaker) -> None:
    config = JwtAuth(type="jwt", algorithm=algorithm, private_key_pem=pem(wrong()))
    with pytest.raises(ConfigurationError, match=f"{algorithm} cannot sign with this private key"):
        JwtSigner(config)


def test_a_secret_for_an_asymmetric_algorithm_is_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="ES256 signs with private_key_pem"):
        JwtAuth(type="jwt", algorithm="ES256", secret="x")
