"""The API connector against real local HTTP(S) servers: every auth method, every pagination style,
rate limits, redirects, a gzip bomb, timeouts and TLS (mTLS, and pinning that still verifies the hostname).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scf.connectors.api import ApiIngestionConnector
from scf.connectors.web.policy import Resolver
from scf.factory import ServiceConnectorFactory
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory
from scf.schemas.operation import OperationRequest, OperationResult
from tests.support.http_servers import ITEMS, DemoCredentials, FakeDns, Pki, RunningApi, make_pki, running_api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo() -> Iterator[RunningApi]:
    yield from running_api()


@pytest.fixture(scope="module")
def other() -> Iterator[RunningApi]:
    """A second API on another origin (another port), for cross-origin redirects."""
    yield from running_api()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ("api.scf.test",), ("127.0.0.1",))


def connection(
    api: RunningApi, *, allow: tuple[str, ...] = (), fields: dict[str, Any] | None = None, **custom: Any
) -> ServiceConnection:
    body = {"base_url": api.url, "allowed_hosts": [api.server.host_port, *allow], **custom}
    return ServiceConnection.parse(
        {"service_type": "api", "service_name": "api_it", "custom_config": body, **(fields or {})}
    )


async def run(
    conn: ServiceConnection, operation: str = "ingest", resolver: Resolver | None = None, **request: Any
) -> OperationResult:
    connector = ApiIngestionConnector(conn, resolver=resolver)
    try:
        return await connector.execute_operation({"operation": operation, **request})
    finally:
        await connector.close()


def ok(result: OperationResult) -> Any:
    assert result.status == "success", result.error
    return result.result_data


def failed(result: OperationResult, category: str, code: str | None = None) -> str:
    assert result.error is not None, result.result_data
    assert result.error.category == category, result.error
    if code is not None:
        assert result.error.code == code, result.error
    return result.model_dump_json()


# --- authentication ---------------------------------------------------------------------------------


def auth_cases(demo: RunningApi) -> dict[str, tuple[dict[str, Any], dict[str, Any], str]]:
    """method -> (custom_config extras, connection fields, endpoint); each uses the demo's credentials."""
    c = demo.api.creds
    return {
        "basic": ({}, {"username": c.username, "password": c.password}, "/auth/basic"),
        "api_key_header": ({"auth": {"type": "api_key", "api_key": c.api_key}}, {}, "/auth/key-header"),
        "api_key_query": (
            {"auth": {"type": "api_key", "api_key": c.api_key, "name": "api_key", "location": "query"}},
            {},
            "/auth/key-query",
        ),
        "bearer": ({"auth": {"type": "bearer", "token": c.bearer}}, {}, "/auth/bearer"),
        "oauth2": (
            {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": f"{demo.url}/oauth/token",
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                }
            },
            {},
            "/auth/oauth",
        ),
        "jwt_hs256": ({"auth": {"type": "jwt", "secret": c.jwt_secret}}, {}, "/auth/jwt-hs256"),
        "jwt_rs256": (
            {"auth": {"type": "jwt", "algorithm": "RS256", "private_key_pem": c.rsa_pem}},
            {},
            "/auth/jwt-rs256",
        ),
        "aws_sigv4": (
            {
                "auth": {
                    "type": "aws_sigv4",
                    "access_key_id": c.aws_access_key,
                    "secret_access_key": c.aws_secret_key,
                    "session_token": c.aws_session_token,
                    "region": c.aws_region,
                }
            },
            {},
            "/auth/sigv4",
        ),
    }


AUTH_METHODS = [
    "basic",
    "api_key_header",
    "api_key_query",
    "bearer",
    "oauth2",
    "jwt_hs256",
    "jwt_rs256",
    "aws_sigv4",
]
WRONG = "wrong-credential-canary-77aa"


def spoiled(custom: dict[str, Any], fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same configuration with its secret replaced by a wrong one."""
    if "password" in fields:
        return custom, {**fields, "password": WRONG}
    auth = dict(custom["auth"])
    for key in ("api_key", "token", "client_secret", "secret", "secret_access_key"):
        if key in auth:
            auth[key] = WRONG
    if "private_key_pem" in auth:
        auth["private_key_pem"] = DemoCredentials().rsa_pem  # a valid key the server does not know
    return {**custom, "auth": auth}, fields


@pytest.mark.parametrize("method", AUTH_METHODS)
async def test_each_auth_method_is_accepted_by_the_server(demo: RunningApi, method: str) -> None:
    custom, fields, endpoint = auth_cases(demo)[method]

    result = await run(
        connection(demo, fields=fields, **custom),
        data={"api_endpoint": endpoint},
        parameters={"records_path": "data"},
    )

    assert ok(result)["records"] == ITEMS[:2]


@pytest.mark.parametrize("method", AUTH_METHODS)
async def test_wrong_credentials_are_a_security_error_that_leaks_nothing(
    demo: RunningApi, method: str
) -> None:
    custom, fields, endpoint = auth_cases(demo)[method]
    custom, fields = spoiled(custom, fields)
    connector = ApiIngestionConnector(connection(demo, fields=fields, **custom))
    request = OperationRequest(operation="ingest", data={"api_endpoint": endpoint})
    try:
        result = await connector.execute_operation(request)
        with pytest.raises(ConnectorError) as caught:
            await connector.execute(request)
    finally:
        await connector.close()

    shown = failed(result, "security")
    assert result.error is not None and result.error.message == "access denied"
    assert WRONG not in shown
    assert WRONG not in f"{caught.value.message} {caught.value.detail}"


async def test_oauth2_tokens_are_cached_and_refreshed_once_after_a_401(demo: RunningApi) -> None:
    custom, _, endpoint = auth_cases(demo)["oauth2"]
    connector = ApiIngestionConnector(connection(demo, **custom))
    request = {
        "operation": "ingest",
        "data": {"api_endpoint": endpoint},
        "parameters": {"records_path": "data"},
    }
    before = len(demo.api.tokens_issued)
    try:
        first = await connector.execute_operation(request)
        second = await connector.execute_operation(request)
        demo.api.revoked.add(demo.api.tokens_issued[-1])  # the API stops accepting the cached token
        third = await connector.execute_operation(request)
    finally:
        await connector.close()

    assert [r.status for r in (first, second, third)] == ["success"] * 3
    assert len(demo.api.tokens_issued) - before == 2  # one at open for the first calls, one after the 401


async def test_oauth2_keeps_refusing_after_one_refresh(demo: RunningApi) -> None:
    custom, _, _ = auth_cases(demo)["oauth2"]
    before = len(demo.api.tokens_issued)

    result = await run(connection(demo, **custom), data={"api_endpoint": "/forbidden"})
    unauthorized = await run(connection(demo, **custom), data={"api_endpoint": "/auth/basic"})

    failed(result, "security", "PERMISSION_DENIED")
    failed(unauthorized, "security", "AUTHENTICATION_FAILED")
    assert len(demo.api.tokens_issued) - before == 3  # 403: no refresh; 401: one refresh, then refused


async def test_a_refused_client_secret_is_a_security_error(demo: RunningApi) -> None:
    custom, _ = spoiled(*auth_cases(demo)["oauth2"][:2])

    result = await run(connection(demo, **custom), data={"api_endpoint": "/auth/oauth"})

    assert WRONG not in failed(result, "security", "AUTHENTICATION_FAILED")


async def test_the_connection_test_reports_authentication(demo: RunningApi) -> None:
    custom, _, _ = auth_cases(demo)["bearer"]
    connector = ApiIngestionConnector(connection(demo, health_path="/auth/bearer", **custom))
    try:
        result = await connector.check()
    finally:
        await connector.close()

    assert result.status == "success", result.error
    assert result.test_results == {
        "connection_test": "passed",
        "authentication_test": "passed",
        "permissions_test": "passed",
    }


# --- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls_api(pki: Pki) -> Iterator[RunningApi]:
    yield from running_api(tls=pki.server_context(require_client_cert=True))


def tls_connection(api: RunningApi, pki: Pki, base_url: str, **auth: Any) -> ServiceConnection:
    custom: dict[str, Any] = {
        "base_url": base_url,
        "allowed_hosts": ["api.scf.test", "other.scf.test", api.server.host_port],
        "ca_file": str(pki.ca_file),
        "health_path": "/auth/mtls",
    }
    if auth:
        custom["auth"] = {"type": "mtls", **auth}
    return ServiceConnection.parse(
        {"service_type": "api", "service_name": "api_tls", "connection_timeout": 5, "custom_config": custom}
    )


async def test_mtls_presents_the_client_certificate(mtls_api: RunningApi, pki: Pki) -> None:
    conn = tls_connection(
        mtls_api, pki, mtls_api.url, cert_file=str(pki.client_cert), key_file=str(pki.client_key)
    )

    result = await run(conn, data={"api_endpoint": "/auth/mtls"}, parameters={"records_path": "data"})

    assert ok(result)["records"] == ITEMS[:2]
    assert mtls_api.server.seen("/auth/mtls")[-1].client_cert is not None


@pytest.mark.parametrize("who", ["nobody", "stranger"])
async def test_mtls_without_an_accepted_certificate_is_a_security_error(
    mtls_api: RunningApi, pki: Pki, who: str
) -> None:
    files = (
        {"cert_file": str(pki.stranger_cert), "key_file": str(pki.stranger_key)} if who == "stranger" else {}
    )
    connector = ApiIngestionConnector(tls_connection(mtls_api, pki, mtls_api.url, **files))
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
    finally:
        await connector.close()

    assert caught.value.category is ErrorCategory.SECURITY, caught.value.detail


async def test_the_pinned_connection_still_verifies_the_hostname(mtls_api: RunningApi, pki: Pki) -> None:
    """api.scf.test exists only in the injected resolver: success proves the socket went to the pinned
    IP, and TLS accepted the certificate for the hostname, not for the IP it connected to."""
    port = mtls_api.server.port
    dns = FakeDns({"api.scf.test": ["127.0.0.1"], "other.scf.test": ["127.0.0.1"]})
    files = {"cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}

    good = await run(
        tls_connection(mtls_api, pki, f"https://api.scf.test:{port}", **files),
        resolver=dns,
        data={"api_endpoint": "/records"},
        parameters={"records_path": "data.items"},
    )
    wrong_name = await run(
        tls_connection(mtls_api, pki, f"https://other.scf.test:{port}", **files),
        resolver=dns,
        data={"api_endpoint": "/records"},
    )

    assert ok(good)["records"] == ITEMS[:3]
    assert mtls_api.server.seen("/records")[-1].headers["host"] == f"api.scf.test:{port}"
    failed(wrong_name, "configuration", "INVALID_CONFIG")
    assert dns.asked.count("api.scf.test") >= 1


async def test_unreadable_tls_files_are_a_configuration_error(
    mtls_api: RunningApi, pki: Pki, tmp_path: Path
) -> None:
    conn = tls_connection(mtls_api, pki, mtls_api.url, cert_file=str(tmp_path / "missing.pem"))

    result = await run(conn, data={"api_endpoint": "/records"})

    failed(result, "configuration", "INVALID_CONFIG")


# --- pagination -------------------------------------------------------------------------------------

PAGINATION = {
    "page": ("/pages/page", "items", {"type": "page", "size_param": "per_page", "page_size": 3}),
    "offset": ("/pages/offset", "results", {"type": "offset", "size_param": "limit", "page_size": 3}),
    "cursor": ("/pages/cursor", "data", {"type": "cursor", "param": "after", "cursor_path": "meta.next"}),
    "link": ("/pages/link", "$", {"type": "link"}),
}


@pytest.mark.parametrize("style", sorted(PAGINATION))
async def test_each_pagination_style_collects_every_record(demo: RunningApi, style: str) -> None:
    endpoint, path, pagination = PAGINATION[style]

    data = ok(
        await run(
            connection(demo),
            data={"api_endpoint": endpoint},
            parameters={"records_path": path, "pagination": pagination},
        )
    )

    assert data["records"] == ITEMS
    assert (data["pages"], data["truncated"]) == (3, False)


@pytest.mark.parametrize("style", sorted(PAGINATION))
async def test_page_size_and_page_token_walk_every_record_once(demo: RunningApi, style: str) -> None:
    """The convention's paging: page_size records per call (cut inside an upstream page too), and
    next_page_token resumes exactly there, whatever the API's own pagination style."""
    endpoint, path, pagination = PAGINATION[style]
    parameters = {"endpoint": endpoint, "records_path": path, "pagination": pagination, "page_size": 2}
    records: list[Any] = []
    token: str | None = None
    for _ in range(10):
        result = await run(connection(demo), parameters=parameters, page_token=token)
        records += ok(result)["records"]
        token = result.next_page_token
        if token is None:
            break

    assert records == ITEMS


async def test_pagination_true_follows_link_headers(demo: RunningApi) -> None:
    data = ok(
        await run(connection(demo), data={"api_endpoint": "/pages/link"}, parameters={"pagination": True})
    )

    assert len(data["records"]) == 7


async def test_max_pages_and_max_records_truncate(demo: RunningApi) -> None:
    endpoint, path, pagination = PAGINATION["cursor"]
    parameters = {"records_path": path, "pagination": pagination}

    by_pages = ok(
        await run(
            connection(demo), data={"api_endpoint": endpoint}, parameters={**parameters, "max_pages": 2}
        )
    )
    by_records = ok(
        await run(
            connection(demo), data={"api_endpoint": endpoint}, parameters={**parameters, "max_records": 4}
        )
    )
    capped = ok(
        await run(connection(demo, max_records=3), data={"api_endpoint": endpoint}, parameters=parameters)
    )

    assert (len(by_pages["records"]), by_pages["pages"], by_pages["truncated"]) == (6, 2, True)
    assert (by_records["records"], by_records["truncated"]) == (ITEMS[:4], True)
    assert (len(capped["records"]), capped["pages"], capped["truncated"]) == (3, 1, True)


async def test_preview_returns_the_first_records_and_their_fields(demo: RunningApi) -> None:
    endpoint, path, pagination = PAGINATION["page"]

    result = await run(
        connection(demo),
        "preview",
        data={"api_endpoint": endpoint},
        parameters={"records_path": path, "pagination": pagination, "limit": 2},
    )

    assert ok(result) == {
        "records": ITEMS[:2],
        "fields": ["id", "name", "even"],
        "pages": 1,
        "truncated": True,
    }


async def test_validate_reports_problems_instead_of_failing(demo: RunningApi) -> None:
    good = ok(
        await run(
            connection(demo),
            "validate",
            data={"api_endpoint": "/records"},
            parameters={"records_path": "data.items"},
        )
    )
    html = ok(await run(connection(demo), "validate", data={"api_endpoint": "/not-json"}))
    scalars = ok(
        await run(
            connection(demo),
            "validate",
            data={"api_endpoint": "/scalars"},
            parameters={"records_path": "data"},
        )
    )
    paged = ok(
        await run(
            connection(demo),
            "validate",
            data={"api_endpoint": "/pages/link"},
            parameters={"pagination": True},
        )
    )

    assert (good["valid"], good["records"], good["fields"]) == (True, 3, ["id", "name", "even"])
    assert html["valid"] is False and "did not answer JSON" in html["problems"][0]
    assert scalars["valid"] is False and "not an object" in scalars["problems"][0]
    assert paged["has_next_page"] is True


async def test_method_headers_query_and_json_body_reach_the_api(demo: RunningApi) -> None:
    data = ok(
        await run(
            connection(demo, headers={"X-Team": "data", "X-Api-Key": "configured-secret-1"}),
            data={"api_endpoint": "/echo?fixed=1"},
            parameters={
                "method": "POST",
                "headers": {"X-Request": "r1"},
                "query": {"q": "a b"},
                "json": {"filter": {"kind": "fruit"}},
                "records_path": "data",
            },
        )
    )

    echoed = data["records"][0]
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"fixed": "1", "q": "a b"}
    assert echoed["headers"]["x-team"] == "data" and echoed["headers"]["x-request"] == "r1"
    assert echoed["headers"]["x-api-key"] == "configured-secret-1"  # the base origin gets configured secrets
    assert echoed["body"] == '{"filter":{"kind":"fruit"}}'
    assert "cookie" not in echoed["headers"]


# --- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "category", "code"),
    [
        ("/missing", "permanent", "NOT_FOUND"),
        ("/invalid?x=1", "permanent", "INVALID_REQUEST"),
        ("/forbidden", "security", "PERMISSION_DENIED"),
        ("/broken", "transient", "CONNECTION_FAILED"),
        ("/busy-no-hint", "transient", "CONNECTION_FAILED"),
        ("/records", "permanent", "INVALID_DATA"),  # records_path "$" holds an object
    ],
)
async def test_replies_are_classified(demo: RunningApi, endpoint: str, category: str, code: str) -> None:
    failed(await run(connection(demo), data={"api_endpoint": endpoint}), category, code)


async def test_429_and_503_with_retry_after_are_resource_errors_carrying_it(demo: RunningApi) -> None:
    demo.api.throttle_next = 1
    limited = await run(connection(demo), data={"api_endpoint": "/limited?wait=4"})
    busy = await run(connection(demo), data={"api_endpoint": "/busy"})

    failed(limited, "resource", "LIMIT_EXCEEDED")
    failed(busy, "resource", "LIMIT_EXCEEDED")
    assert limited.error is not None and limited.error.retry_after == 4 and limited.error.retryable
    assert busy.error is not None and busy.error.retry_after == 7


async def test_the_fleets_retry_waits_for_retry_after(demo: RunningApi) -> None:
    demo.api.throttle_next = 1
    conn = connection(demo, fields={"retry_attempts": 2})
    async with ServiceConnectorFactory(retry_delay=0.01, max_retry_delay=5) as factory:
        await factory.create_connector(conn)
        started = time.monotonic()
        result = await factory.execute_operation(
            conn.service_name,
            {
                "operation": "ingest",
                "data": {"api_endpoint": "/limited?wait=1"},
                "parameters": {"records_path": "data"},
            },
        )
        elapsed = time.monotonic() - started

    assert ok(result)["records"] == ITEMS[:1]
    assert elapsed >= 1.0


async def test_error_messages_quote_the_api_but_never_a_secret(demo: RunningApi) -> None:
    conn = connection(
        demo, auth={"type": "api_key", "api_key": "query-key-canary-31", "location": "query", "name": "k"}
    )

    result = await run(conn, data={"api_endpoint": "/invalid"})

    shown = failed(result, "permanent", "INVALID_REQUEST")
    assert "bad query" in shown
    assert "query-key-canary-31" not in shown


async def test_redirects_on_the_same_origin_are_followed(demo: RunningApi) -> None:
    data = ok(
        await run(
            connection(demo),
            data={"api_endpoint": "/redirect?to=/records"},
            parameters={"records_path": "data.items"},
        )
    )

    assert data["records"] == ITEMS[:3]


async def test_a_cross_origin_redirect_drops_the_credentials(demo: RunningApi, other: RunningApi) -> None:
    custom, _, _ = auth_cases(demo)["bearer"]
    conn = connection(demo, allow=(other.server.host_port,), **custom)
    target = f"{other.url}/records"

    data = ok(
        await run(
            conn, data={"api_endpoint": f"/redirect?to={target}"}, parameters={"records_path": "data.items"}
        )
    )

    assert data["records"] == ITEMS[:3]
    assert demo.server.seen("/redirect")[-1].headers["authorization"] == f"Bearer {demo.api.creds.bearer}"
    assert "authorization" not in other.server.seen("/records")[-1].headers


async def test_headers_with_unusual_names_do_not_follow_a_cross_origin_redirect(
    demo: RunningApi, other: RunningApi
) -> None:
    headers = {"X-Auth": "unusual-secret-1", "Signature": "unusual-secret-2", "Accept": "application/json"}
    conn = connection(demo, allow=(other.server.host_port,), headers=headers)
    target = f"{other.url}/records"

    data = ok(
        await run(
            conn,
            data={"api_endpoint": f"/redirect?to={target}"},
            parameters={"records_path": "data.items", "headers": {"X-Vault-Key": "unusual-secret-3"}},
        )
    )

    assert data["records"] == ITEMS[:3]
    sent, forwarded = demo.server.seen("/redirect")[-1].headers, other.server.seen("/records")[-1].headers
    assert (sent["x-auth"], sent["signature"], sent["x-vault-key"]) == tuple(
        f"unusual-secret-{i}" for i in (1, 2, 3)
    )
    assert {"x-auth", "signature", "x-vault-key"}.isdisjoint(forwarded.keys())
    assert forwarded["accept"] == "application/json"


async def test_redirects_are_capped_and_can_be_switched_off(demo: RunningApi) -> None:
    loop = "/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/records"

    capped = await run(connection(demo, max_redirects=1), data={"api_endpoint": loop})
    off = await run(connection(demo, follow_redirects=False), data={"api_endpoint": "/redirect?to=/records"})

    failed(capped, "permanent", "LIMIT_EXCEEDED")
    failed(off, "permanent", "INVALID_REQUEST")


async def test_a_gzip_bomb_is_stopped_at_the_decoded_size_cap(demo: RunningApi) -> None:
    bomb = await run(connection(demo, max_response_bytes=4 * 1024 * 1024), data={"api_endpoint": "/bomb"})
    gzipped = await run(
        connection(demo), data={"api_endpoint": "/gzipped"}, parameters={"records_path": "data.items"}
    )

    failed(bomb, "permanent", "LIMIT_EXCEEDED")
    assert ok(gzipped)["records"] == ITEMS


async def test_slow_replies_time_out_as_transient_errors(demo: RunningApi) -> None:
    read = await run(connection(demo, timeouts={"read": 0.3}), data={"api_endpoint": "/slow?seconds=1"})
    started = time.monotonic()
    total = await run(connection(demo), data={"api_endpoint": "/slow?seconds=1"}, timeout=0.3)

    failed(read, "transient", "TIMEOUT")
    failed(total, "transient", "TIMEOUT")
    assert time.monotonic() - started < 0.9


async def test_credentials_are_not_sent_to_another_origin(demo: RunningApi, other: RunningApi) -> None:
    custom, _, _ = auth_cases(demo)["bearer"]
    before = len(other.server.requests)

    result = await run(
        connection(demo, allow=(other.server.host_port,), **custom),
        data={"api_endpoint": f"{other.url}/records"},
    )

    failed(result, "permanent", "INVALID_REQUEST")
    assert len(other.server.requests) == before


async def test_a_header_with_an_unusual_name_is_a_credential_for_its_origin_only(
    demo: RunningApi, other: RunningApi
) -> None:
    before = len(other.server.requests)

    result = await run(
        connection(demo, allow=(other.server.host_port,), headers={"X-Auth": "unusual-secret-4"}),
        data={"api_endpoint": f"{other.url}/records"},
    )

    failed(result, "permanent", "INVALID_REQUEST")
    assert len(other.server.requests) == before
