"""AWS SigV4 signing, checked against botocore's own signer (an independent implementation)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from scf.connectors.api.sigv4 import AwsCredentials, aws_query, canonical_path, sign

MOMENT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
CREDS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMPORARY = AwsCredentials("ASIAEXAMPLE", "secret/with+chars", "session-token-value")


def botocore_authorization(
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    body: bytes,
    creds: AwsCredentials,
    region: str,
    service: str,
) -> str:
    request = AWSRequest(method=method, url=str(url), headers=headers, data=body)
    request.context["timestamp"] = MOMENT.strftime("%Y%m%dT%H%M%SZ")
    signer = SigV4Auth(
        Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), service, region
    )
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    if creds.session_token:
        request.headers["X-Amz-Security-Token"] = creds.session_token
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "creds"),
    [
        ("GET", "https://abc.execute-api.eu-west-1.amazonaws.com/prod/items", {}, b"", CREDS),
        ("GET", "https://h.example.com/a%20b/c~d?z=1&a=2&a=1&sp=x%20y&t=~", {}, b"", CREDS),
        ("GET", "http://127.0.0.1:8080/v1/items/?page=2", {}, b"", TEMPORARY),
        (
            "POST",
            "https://h.example.com/search",
            {"Content-Type": "application/json"},
            b'{"query": "caf\xc3\xa9"}',
            TEMPORARY,
        ),
        ("GET", "https://[2001:db8::1]:8443/x", {}, b"", CREDS),
    ],
)
def test_signatures_match_botocore(
    method: str, url: str, headers: dict[str, str], body: bytes, creds: AwsCredentials
) -> None:
    target = httpx.URL(url)
    target = target.copy_with(query=aws_query(target).encode()) if target.query else target
    host = target.netloc.decode()
    if target.port in (80, 443):
        host = target.host

    ours = sign(
        method,
        target,
        headers,
        body,
        credentials=creds,
        region="eu-west-1",
        service="execute-api",
        now=MOMENT,
    )
    theirs = botocore_authorization(
        method, target, {"host": host, **headers}, body, creds, "eu-west-1", "execute-api"
    )

    assert ours["Authorization"] == theirs
    assert ours["X-Amz-Date"] == "20260304T050607Z"
    assert ("X-Amz-Security-Token" in ours) is (creds.session_token is not None)


def test_the_query_is_re_encoded_the_way_aws_canonicalises_it() -> None:
    url = httpx.URL("https://h/p", params={"q": "a b", "plus": "1+2", "t": "é/~"})

    assert aws_query(url) == "q=a%20b&plus=1%2B2&t=%C3%A9%2F~"


def test_the_path_is_normalised_then_encoded_again() -> None:
    assert canonical_path("") == "/"
    assert canonical_path("/a//b/./c/../d/") == "/a/b/d/"
    assert canonical_path("/a%20b") == "/a%2520b"


def test_the_secret_never_appears_in_the_headers() -> None:
    signed = sign(
        "GET", httpx.URL("https://h/"), {}, b"", credentials=TEMPORARY, region="r", service="s", now=MOMENT
    )

    assert all(TEMPORARY.secret_access_key not in value for value in signed.values())
    assert TEMPORARY.secret_access_key not in repr(TEMPORARY)
