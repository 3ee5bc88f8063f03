"""The API connector's self-signed credentials: JWTs it signs (PyJWT) and AWS SigV4 (botocore).

Split from api.py (the connector's config) to keep each module small; api.py re-exports them.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator

from scf.schemas.validation import Strict

#: JWS algorithms signed with a shared secret; every other one below signs with a PEM private key.
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
]  # fmt: skip


class JwtAuth(Strict):
    """A JWT signed here (HS* with `secret`; RS*, PS*, ES*, EdDSA with `private_key_pem`), sent as a
    bearer token."""

    type: Literal["jwt"]
    algorithm: JwtAlgorithm = "HS256"
    secret: SecretStr | None = Field(default=None, min_length=1, max_length=4096, repr=False)
    private_key_pem: SecretStr | None = Field(default=None, min_length=1, max_length=65536, repr=False)
    issuer: str | None = Field(default=None, max_length=1024)
    subject: str | None = Field(default=None, max_length=1024)
    audience: str | None = Field(default=None, max_length=1024)
    key_id: str | None = Field(default=None, max_length=256)
    ttl: int = Field(default=300, ge=10, le=86400)
    claims: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _key_fits_algorithm(self) -> Self:
        if self.algorithm in HMAC_ALGORITHMS:
            if self.secret is None or self.private_key_pem is not None:
                raise ValueError(f"{self.algorithm} signs with secret (and no private_key_pem)")
        elif self.private_key_pem is None or self.secret is not None:
            raise ValueError(f"{self.algorithm} signs with private_key_pem (and no secret)")
        return self


class AwsSigV4Auth(Strict):
    """AWS Signature Version 4 for IAM-authorised APIs (API Gateway, OpenSearch, Lambda URLs, S3, ...).

    Without `access_key_id`/`secret_access_key` the worker's own AWS credentials are used (environment,
    shared files, web identity/IRSA, container or instance metadata), refreshed as they expire."""

    type: Literal["aws_sigv4"]
    access_key_id: str | None = Field(default=None, min_length=1, max_length=256)
    secret_access_key: SecretStr | None = Field(default=None, min_length=1, max_length=1024, repr=False)
    session_token: SecretStr | None = Field(default=None, min_length=1, max_length=8192, repr=False)
    region: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    service: str = Field(default="execute-api", pattern=r"^[a-z0-9-]{1,64}$")

    @model_validator(mode="after")
    def _keys_together(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together (or neither: the worker's own)")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token goes with access_key_id and secret_access_key")
        return self


__all__ = ["HMAC_ALGORITHMS", "AwsSigV4Auth", "JwtAlgorithm", "JwtAuth"]
