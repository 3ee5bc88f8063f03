"""Building the next hop of a redirect: method and body rules, credentials only within the origin."""

from __future__ import annotations

import httpx
import pytest

from scf.connectors.web.client import clipped, redirect_request
from scf.schemas.errors import SecurityError


def hop(
    status: int, location: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes = b""
) -> httpx.Request:
    request = httpx.Request(method, "https://api.example.com/v1/items", headers=headers, content=body or None)
    response = httpx.Response(status, headers={"Location": location}, request=request)
    return redirect_request(request, response, sensitive_headers=("x-api-key",))


def test_a_relative_location_is_resolved_against_the_request() -> None:
    assert str(hop(302, "../v2/items?page=2").url) == "https://api.example.com/v2/items?page=2"


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (303, "POST", "GET"),
        (307, "POST", "POST"),
        (308, "POST", "POST"),
    ],
)
def test_the_method_follows_rfc_9110(status: int, method: str, expected: str) -> None:
    request = hop(status, "/next", method=method, headers={"Content-Type": "application/json"}, body=b"{}")

    assert request.method == expected
    assert (request.content == b"{}") is (expected == "POST")
    assert ("content-type" in request.headers) is (expected == "POST")


def test_credentials_stay_on_the_same_origin() -> None:
    headers = {
        "Authorization": "Bearer t",
        "X-API-Key": "k",
        "X-Auth-Token": "t2",
        "Accept": "application/json",
    }

    same = hop(302, "/elsewhere", headers=headers)
    other = hop(302, "https://cdn.example.net/file", headers=headers)
    downgraded = hop(302, "http://api.example.com/v1/items", headers=headers)

    assert same.headers["authorization"] == "Bearer t" and same.headers["x-api-key"] == "k"
    for request in (other, downgraded):
        assert {"authorization", "x-api-key", "x-auth-token"}.isdisjoint(request.headers.keys())
        assert request.headers["accept"] == "application/json"
    assert other.headers["host"] == "cdn.example.net"


def test_an_unparseable_location_is_refused() -> None:
    with pytest.raises(SecurityError):
        hop(302, "http://0177.0.0.1/")


def test_phase_timeouts_are_clipped_to_the_remaining_budget() -> None:
    timeout = httpx.Timeout(connect=5, read=30, write=30, pool=10)

    assert clipped(timeout, None) is timeout
    assert clipped(timeout, 2.0).as_dict() == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert clipped(timeout, -1).connect == 0.001


def test_headers_with_unusual_names_stay_on_the_same_origin() -> None:
    headers = {"X-Auth": "a1", "X-Vault-Key": "v1", "Signature": "s1", "Accept": "application/json"}

    other = hop(307, "https://cdn.example.net/file", headers=headers)
    same = hop(307, "/elsewhere", headers=headers)

    assert {"x-auth", "x-vault-key", "signature"}.isdisjoint(other.headers.keys())
    assert other.headers["accept"] == "application/json"
    assert same.headers["x-auth"] == "a1" and same.headers["signature"] == "s1"
