"""Planning a request: endpoints against the base URL, origins, parameters, pagination defaults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scf.connectors.api.connector import ApiIngestionConnector
from scf.connectors.api.requests import FetchParameters, PreviewParameters, parse
from scf.connectors.api.settings import api_settings, endpoint_url, join, same_origin
from scf.schemas.configs.api import ApiConfig, PaginationSpec
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import PermanentError, SecurityError
from scf.schemas.operation import OperationRequest


def connection(custom: dict[str, Any], **fields: Any) -> ServiceConnection:
    return ServiceConnection.parse(
        {"service_type": "api", "service_name": "plan", "custom_config": custom, **fields}
    )


def settings(custom: dict[str, Any], **fields: Any) -> Any:
    conn = connection(custom, **fields)
    return api_settings(conn, ApiConfig.model_validate(conn.custom_config))


def test_relative_endpoints_extend_the_base_path() -> None:
    base = httpx.URL("https://api.example.com/v1/")

    assert str(join(base, "items?x=1")) == "https://api.example.com/v1/items?x=1"
    assert str(join(httpx.URL("https://api.example.com/v1"), "/items")) == "https://api.example.com/v1/items"


def test_endpoint_urls() -> None:
    with_base = settings({"base_url": "https://api.example.com/v1"})
    without = settings({})

    assert str(endpoint_url(with_base, None)) == "https://api.example.com/v1"
    assert str(endpoint_url(with_base, "items")) == "https://api.example.com/v1/items"
    assert str(endpoint_url(without, "https://other.example/x")) == "https://other.example/x"
    for bad in ("//evil.example/x",):
        with pytest.raises(PermanentError):
            endpoint_url(with_base, bad)
    with pytest.raises(PermanentError):
        endpoint_url(without, "items")
    with pytest.raises(PermanentError):
        endpoint_url(without, None)
    with pytest.raises(SecurityError):
        endpoint_url(without, "http://user@other.example/x")


def test_the_base_url_may_come_from_host_port_and_ssl() -> None:
    assert str(settings({}, host="api.example.com", port=8443, ssl_enabled=True).base_url) == (
        "https://api.example.com:8443"
    )
    assert str(settings({}, host="::1").base_url) == "http://[::1]"


def test_origins_compare_scheme_host_and_effective_port() -> None:
    assert same_origin(httpx.URL("https://a.example/x"), httpx.URL("https://a.example:443/y"))
    assert not same_origin(httpx.URL("http://a.example/x"), httpx.URL("https://a.example/x"))
    assert not same_origin(httpx.URL("https://b.example/x"), httpx.URL("https://a.example/x"))
    assert not same_origin(httpx.URL("https://a.example/x"), None)


def test_parameters_are_checked_before_any_io() -> None:
    params = parse(
        FetchParameters, {"method": "post", "json": {"q": 1}, "query": {"a": [1, 2]}}, "parameters"
    )

    assert (params.method, params.body) == ("POST", {"q": 1})
    for bad in (
        {"method": "DELETE"},
        {"json": {"q": 1}},
        {"headers": {"Host": "x"}},
        {"headers": {"X": "a\nb"}},
        {"max_pages": 0},
        {"pagination": {"type": "cursor"}},
        {"unknown": 1},
    ):
        with pytest.raises(PermanentError) as caught:
            parse(FetchParameters, bad, "parameters")
        assert caught.value.code == "INVALID_REQUEST"
    with pytest.raises(PermanentError):
        parse(PreviewParameters, {"limit": 5000}, "parameters")


def test_pagination_true_means_the_connectors_default_else_link_headers() -> None:
    default = PaginationSpec(type="page", page_size=10)

    assert FetchParameters(pagination=True).pagination_spec(None) == PaginationSpec(type="link")
    assert FetchParameters(pagination=True).pagination_spec(default) == default
    assert FetchParameters().pagination_spec(default) == default
    assert FetchParameters(pagination=False).pagination_spec(default) is None


def plan(custom: dict[str, Any], request: dict[str, Any], **fields: Any) -> Any:
    connector = ApiIngestionConnector(connection(custom, **fields))
    return connector._plan(OperationRequest.model_validate(request))


def test_plans_cap_pages_and_records_at_the_configured_limits() -> None:
    custom = {"base_url": "https://api.example.com", "max_pages": 5, "max_records": 50, "preview_records": 4}

    ingest = plan(custom, {"operation": "ingest", "parameters": {"max_pages": 500, "max_records": 10}})
    preview = plan(custom, {"operation": "preview"})

    assert (ingest.max_pages, ingest.max_records) == (5, 10)
    assert preview.max_records == 4
    assert ingest.first.credentials and str(ingest.first.url) == "https://api.example.com"


def test_query_parameters_merge_into_the_endpoints_own_query() -> None:
    planned = plan(
        {"base_url": "https://api.example.com"},
        {"operation": "ingest", "data": {"api_endpoint": "items?a=1"}, "parameters": {"query": {"b": 2}}},
    )

    assert planned.first.url.params == httpx.QueryParams({"a": "1", "b": "2"})


def test_credentials_never_go_to_another_origin() -> None:
    secured = {"base_url": "https://api.example.com", "auth": {"type": "bearer", "token": "t0k3n-secret"}}
    request = {"operation": "ingest", "data": {"api_endpoint": "https://attacker.example/steal"}}

    with pytest.raises(PermanentError) as caught:
        plan(secured, request)
    anonymous = plan({"base_url": "https://api.example.com"}, request)

    assert "origin" in caught.value.message
    assert not anonymous.first.credentials
