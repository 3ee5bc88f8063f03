"""Planning a request: endpoints against the base URL, origins, parameters, pagination defaults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from scf.connectors.api.connector import ApiIngestionConnector
from scf.connectors.api.requests import CallParameters as FetchParameters
from scf.connectors.api.settings import api_settings, endpoint_url, join, same_origin
from scf.connectors.api.tokens import Resume, encode
from scf.connectors.operation_table import Call
from scf.schemas.configs.api import ApiConfig, PaginationSpec
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import PermanentError, SecurityError
from scf.schemas.operation import OperationRequest
from scf.schemas.validation import parse_model


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
    call = parsed(
        {
            "operation": "ingest",
            "data": {"body": {"q": 1}},
            "parameters": {"method": "post", "query": {"a": [1, 2]}},
        }
    )

    assert (call.parameters.method, call.data.body) == ("POST", {"q": 1})
    for bad in (
        {"method": "DELETE"},
        {"headers": {"Host": "x"}},
        {"headers": {"X": "a\nb"}},
        {"max_pages": 0},
        {"pagination": {"type": "cursor"}},
        {"unknown": 1},
        {"body": {"q": 1}, "json": {"q": 2}},
    ):
        with pytest.raises(PermanentError) as caught:
            parsed({"operation": "ingest", "parameters": bad})
        assert caught.value.code == "INVALID_REQUEST"
    for too_many in ({"limit": 5000}, {"page_size": 5000}):
        with pytest.raises(PermanentError):
            parsed({"operation": "preview", "parameters": too_many})


def test_a_body_needs_post() -> None:
    for request in ({"data": {"body": {"q": 1}}}, {"parameters": {"json": {"q": 1}}}):
        with pytest.raises(PermanentError) as caught:
            plan({"base_url": "https://api.example.com"}, {"operation": "ingest", **request})
        assert "POST" in caught.value.message


def test_old_request_shapes_move_to_the_convention() -> None:
    old = parsed(
        {
            "operation": "preview",
            "data": {"api_endpoint": "/items"},
            "parameters": {"method": "POST", "json": {"q": 1}, "limit": 3},
        }
    )
    new = parsed(
        {
            "operation": "preview",
            "data": {"body": {"q": 1}},
            "parameters": {"endpoint": "/items", "method": "POST", "page_size": 3},
        }
    )

    assert (old.data, old.parameters) == (new.data, new.parameters)
    with pytest.raises(PermanentError):
        parsed({"operation": "ingest", "data": {"api_endpoint": "/a"}, "parameters": {"endpoint": "/b"}})


def test_page_size_caps_one_call_and_a_token_resumes_on_the_same_origin_only() -> None:
    custom = {"base_url": "https://api.example.com", "max_records": 50}
    token = encode(Resume(httpx.URL("https://api.example.com/items?page=3"), skip=2, pages=2, records=20))
    elsewhere = encode(Resume(httpx.URL("https://attacker.example/items")))

    capped = plan(custom, {"operation": "ingest", "parameters": {"page_size": 7}})
    resumed = plan(custom, {"operation": "ingest", "parameters": {"endpoint": "items"}, "page_token": token})

    assert capped.max_records == 7
    assert str(resumed.first.url) == "https://api.example.com/items?page=3"
    assert resumed.resume == Resume(httpx.URL("https://api.example.com/items?page=3"), 2, 2, 20)
    for bad in (elsewhere, "not-a-token", "e30"):
        with pytest.raises(PermanentError) as caught:
            plan(custom, {"operation": "ingest", "page_token": bad})
        assert caught.value.code == "INVALID_REQUEST"
    with pytest.raises(PermanentError):
        plan(custom, {"operation": "validate", "page_token": token})


def test_pagination_true_means_the_connectors_default_else_link_headers() -> None:
    default = PaginationSpec(type="page", page_size=10)

    assert FetchParameters(pagination=True).pagination_spec(None) == PaginationSpec(type="link")
    assert FetchParameters(pagination=True).pagination_spec(default) == default
    assert FetchParameters().pagination_spec(default) == default
    assert FetchParameters(pagination=False).pagination_spec(default) is None


def parse(model: type[BaseModel], body: dict[str, Any], where: str) -> Any:
    return parse_model(model, body, where)


def parsed(request: dict[str, Any]) -> Call[Any, Any]:
    """The request as the operation table parses it (aliases moved, models validated)."""
    parsed_request = OperationRequest.model_validate(request)
    return ApiIngestionConnector.operation_table[parsed_request.operation].parse(parsed_request, "api")


def plan(custom: dict[str, Any], request: dict[str, Any], **fields: Any) -> Any:
    connector = ApiIngestionConnector(connection(custom, **fields))
    return connector._plan(parsed(request))


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
