"""AWS Signature Version 4 with botocore's signer and credential providers.

Static keys from the config, or, when none are configured, botocore's credential chain: environment
variables, the shared credentials/config files, web identity (IRSA on EKS), the ECS container endpoint
and the EC2 instance metadata service, refreshed by botocore before they expire. Those providers talk
to their own endpoints, never to a URL a caller gave, so the SSRF guard (which refuses the metadata
addresses for requests) is not in their way. `service="s3"` signs the S3 way (`x-amz-content-sha256`).
Only what must not change in transit is signed: host, content-type, the date, the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import httpx
from botocore.auth import S3SigV4Auth, SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from scf.schemas.configs.api_signed import AwsSigV4Auth
from scf.schemas.errors import ConfigurationError, ErrorCode

#: The request headers that are signed when present (host and the x-amz-* ones are always signed).
SIGNED_OPTIONAL = ("content-type",)
#: What the signer adds to the request.
SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


def query_pairs(url: httpx.URL) -> list[tuple[str, str]]:
    """The query's (name, value) pairs, decoded, in order ('+' is a space, as httpx encodes it)."""
    pairs = []
    for part in url.query.decode("ascii").split("&") if url.query else ():
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def aws_query(url: httpx.URL) -> str:
    """The query re-encoded the way AWS canonicalises it (spaces as %20), order kept: send this, so the
    bytes on the wire are the ones signed."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query_pairs(url))


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


class AwsSigner:
    """Signs requests for one connector; resolves and refreshes credentials through botocore."""

    def __init__(self, config: AwsSigV4Auth) -> None:
        self.region, self.service = config.region, config.service
        self._credentials: Any = None
        if config.access_key_id is not None and config.secret_access_key is not None:
            token = config.session_token.get_secret_value() if config.session_token else None
            self._credentials = Credentials(
                config.access_key_id, config.secret_access_key.get_secret_value(), token
            )
        self._last: Any = None

    async def _frozen(self) -> Any:
        if self._credentials is None:
            self._credentials = await asyncio.to_thread(_credential_chain)
        # refreshable credentials (IRSA, instance profile) may fetch here: off the event loop
        self._last = await asyncio.to_thread(self._credentials.get_frozen_credentials)
        return self._last

    async def sign(
        self, method: str, url: httpx.URL, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """The headers to set on the request (Authorization, X-Amz-Date, and the token/payload hash)."""
        frozen = await self._frozen()
        kept = {k: v for k, v in headers.items() if k.lower() in SIGNED_OPTIONAL}
        request = AWSRequest(method=method.upper(), url=str(url), data=body, headers=kept)
        signer = S3SigV4Auth if self.service == "s3" else SigV4Auth
        signer(frozen, self.service, self.region).add_auth(request)
        return {name: str(request.headers[name]) for name in SIGNATURE_HEADERS if name in request.headers}

    def secrets(self) -> list[str]:
        """The secret parts of the credentials last used (for redaction)."""
        last = self._last
        if last is None:
            return []
        return [s for s in (last.secret_key, last.token) if s]


def _credential_chain() -> Any:
    import botocore.session  # type: ignore[import-untyped]

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise ConfigurationError(
            "aws_sigv4 has no access_key_id/secret_access_key and no AWS credentials were found "
            "(environment, shared files, web identity, container or instance metadata)",
            code=ErrorCode.INVALID_CONFIG,
        )
    return found
