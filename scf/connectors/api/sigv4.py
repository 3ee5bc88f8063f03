"""AWS Signature Version 4 for one request, with hashlib/hmac: the headers that sign it (pure).

Follows the AWS documentation for non-S3 services (path segments encoded twice, query pairs sorted
and encoded once, payload hashed) and signs only what must not change in transit: host, content-type,
x-amz-date and the session token. tests/unit/test_api_sigv4.py checks it against botocore's signer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import httpx

ALGORITHM = "AWS4-HMAC-SHA256"
_SIGNED_OPTIONAL = ("content-type",)


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def canonical_path(raw_path: str) -> str:
    """The encoded path without dot segments or empty segments, URI-encoded once more (non-S3 rule)."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if raw_path.endswith("/") and segments else ""
    return quote("/" + "/".join(segments) + trailing, safe="/~")


def query_pairs(url: httpx.URL) -> list[tuple[str, str]]:
    """The query's (name, value) pairs, decoded, in order ('+' is a space, as httpx encodes it)."""
    pairs = []
    for part in url.query.decode("ascii").split("&") if url.query else ():
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def aws_query(url: httpx.URL) -> str:
    """The query re-encoded the way AWS canonicalises it (spaces as %20), order kept: send this."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query_pairs(url))


def canonical_query(url: httpx.URL) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in query_pairs(url)))


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def host_header(url: httpx.URL) -> str:
    host = url.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(url.scheme)
    return host if url.port in (None, default) else f"{host}:{url.port}"


def sign(
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to set on the request: X-Amz-Date, X-Amz-Security-Token (if any), Authorization."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
    lowered = {k.lower(): v for k, v in headers.items()}
    to_sign = {"host": host_header(url), "x-amz-date": amz_date}
    for name in _SIGNED_OPTIONAL:
        if name in lowered:
            to_sign[name] = lowered[name]
    if credentials.session_token is not None:
        to_sign["x-amz-security-token"] = credentials.session_token
    names = sorted(to_sign)
    canonical_headers = "".join(f"{n}:{' '.join(to_sign[n].split())}\n" for n in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        (
            method.upper(),
            canonical_path(url.raw_path.decode("ascii").partition("?")[0]),
            canonical_query(url),
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest())
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed = {
        "X-Amz-Date": amz_date,
        "Authorization": (
            f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }
    if credentials.session_token is not None:
        signed["X-Amz-Security-Token"] = credentials.session_token
    return signed
