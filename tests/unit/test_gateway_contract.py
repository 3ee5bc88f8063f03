"""The gateway's HTTP contract details, without a fleet: 405 carries `Allow` on every path, and validation
messages name the field by its dotted path (never an empty location or a bare position)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.testclient import TestClient

from scf.fleet.settings import Settings
from scf.gateway.app import create_app
from scf.gateway.messages import describe, field_path, invalid_json, json_position
from scf.schemas.asyncapi import build_asyncapi
from scf.schemas.configs import config_model
from scf.schemas.configs.rabbitmq import url_problem
from scf.schemas.configs.redis import parse_url
from scf.schemas.connection import SERVICE_NAME_PATTERN, ServiceConnection
from scf.schemas.connection_rules import CONFIG_EXTRAS, CONFIG_PATTERNS

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def client() -> TestClient:
    # no `with`: the lifespan (fleet, Redis) is not started; a 405 is decided by routing alone
    return TestClient(create_app(Settings()), raise_server_exceptions=False)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "abc", path)


def _served() -> dict[str, set[str]]:
    app = create_app(Settings())
    served: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, APIRoute):
            served.setdefault(_concrete(route.path), set()).update(route.methods or ())
    return served


def test_every_405_lists_every_method_its_path_serves(client: TestClient) -> None:
    served = _served()
    checked = 0
    for path, methods in served.items():
        for method in sorted(set(ALL_METHODS) - methods):
            response = client.request(method, path)
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["allow"].split(", ")) == methods, (method, path)
            assert response.json()["error"]["message"] == "Method Not Allowed"
            checked += 1
    assert len(served) >= 20 and checked >= 60


def test_a_path_with_several_routes_names_them_all(client: TestClient) -> None:
    response = client.request("PATCH", "/connectors/abc")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT, DELETE"


def test_trace_is_refused_with_allow_too(client: TestClient) -> None:
    response = client.request("TRACE", "/healthz")

    assert (response.status_code, response.headers["allow"]) == (405, "GET")


def test_malformed_json_is_a_400_naming_line_and_column(client: TestClient) -> None:
    response = client.post(
        "/connector-types/postgresql/validate",
        content=b'{\n  "host": "x",\n  "port": ,\n}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400  # the body is read before the access guard runs
    assert response.json()["error"] == {
        "category": "permanent",
        "code": "INVALID_JSON",
        "message": "invalid JSON at line 3 column 11: Expecting value",
        "retryable": False,
        "retry_after": None,
    }


def test_field_paths_are_dotted_and_never_empty() -> None:
    assert field_path(("body", "failover_hosts", 0, "host")) == "body.failover_hosts.0.host"
    assert field_path(("path", "service_name")) == "path.service_name"
    assert field_path(()) == "request"


def test_a_whole_body_rule_is_named_body_without_the_exception_class() -> None:
    errors = [{"type": "value_error", "loc": ("body",), "msg": "Value error, give either ids or all: true"}]

    assert describe(errors) == "invalid request: body: give either ids or all: true"


def test_several_problems_are_listed_with_their_paths() -> None:
    errors = [
        {
            "type": "string_too_long",
            "loc": ("body", "host"),
            "msg": "String should have at most 253 characters",
        },
        {"type": "greater_than_equal", "loc": ("query", "limit"), "msg": "Input should be >= 1"},
    ]

    assert describe(errors) == (
        "invalid request: body.host: String should have at most 253 characters; "
        "query.limit: Input should be >= 1"
    )


def test_fastapis_own_json_error_becomes_a_line_and_column() -> None:
    body = '{"a": 1,\n "b": ,}'
    with pytest.raises(json.JSONDecodeError) as decoded:
        json.loads(body)
    loc = ("body", decoded.value.pos)
    error = {
        "type": "json_invalid",
        "loc": loc,
        "msg": "JSON decode error",
        "ctx": {"error": decoded.value.msg},
    }

    assert describe([error], body) == "invalid JSON at line 2 column 7: Expecting value"
    assert json_position(body, 0) == (1, 1)
    assert invalid_json(b"[1,]", 3, "Expecting value") == "invalid JSON at line 1 column 4: Expecting value"


@settings(max_examples=500, deadline=None)
@given(url=st.from_regex(CONFIG_PATTERNS["redis"]["url"], fullmatch=True))
def test_every_redis_url_the_document_admits_the_config_accepts(url: str) -> None:
    parse_url(url)


@settings(max_examples=500, deadline=None)
@given(url=st.from_regex(CONFIG_PATTERNS["rabbitmq"]["url"], fullmatch=True))
def test_every_amqp_url_the_document_admits_the_config_accepts(url: str) -> None:
    assert url_problem(url) is None


def test_a_nested_value_error_loses_its_class_name_too() -> None:
    errors = [
        {"loc": ("body",), "msg": "Value error, custom_config.url: Value error, must start with amqp://"}
    ]

    assert describe(errors) == "invalid request: body: custom_config.url: must start with amqp://"


def test_the_document_declares_what_the_server_enforces() -> None:
    document = create_app(Settings()).openapi()
    schemas = document["components"]["schemas"]
    execute = document["paths"]["/connectors/{service_name}/execute"]["post"]
    name = next(p for p in execute["parameters"] if p["name"] == "service_name")

    assert name["schema"]["pattern"] == SERVICE_NAME_PATTERN
    assert {"service_name", "connection_id", "idempotency_key"}.isdisjoint(
        schemas["ExecuteRequest"]["properties"]
    )
    assert "service_name" not in schemas["ConnectorUpdate"].get("required", [])
    assert set(schemas["ServiceConnection"]["properties"]["service_type"]["enum"]) >= {"postgresql", "redis"}
    assert "HTTPValidationError" not in schemas
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security"):
                assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(
    ("service_type", "field"),
    [(t, f) for t, fields in CONFIG_PATTERNS.items() for f in fields],
)
def test_every_value_a_declared_config_pattern_admits_the_config_model_accepts(
    service_type: str, field: str
) -> None:
    model = config_model(service_type)
    assert model is not None

    name = field.removesuffix("[]")
    declared = {
        "pattern": CONFIG_PATTERNS[service_type][field],
        **CONFIG_EXTRAS.get(service_type, {}).get(name, {}),
    }
    admitted = jsonschema.Draft202012Validator(declared).is_valid

    @settings(max_examples=300, deadline=None)
    @given(value=st.from_regex(CONFIG_PATTERNS[service_type][field], fullmatch=True).filter(admitted))
    def accepted(value: str) -> None:
        model.model_validate({name: [value] if field.endswith("[]") else value})

    accepted()


API_BODIES: list[dict[str, Any]] = [
    {},
    {"username": "u"},
    {"username": "u", "host": "h"},
    {"username": "u", "custom_config": {"base_url": "https://x"}},
    {"custom_config": {"auth": {"type": "basic"}, "base_url": "https://x"}},
    {"username": "u", "custom_config": {"auth": {"type": "basic"}, "base_url": "https://x"}},
    {"username": "u", "custom_config": {"auth": {"type": "basic", "username": "v"}, "base_url": "https://x"}},
    {"custom_config": {"auth": {"type": "basic", "username": "v"}, "base_url": "https://x"}},
    {"username": "u", "custom_config": {"auth": {"type": "bearer", "token": "t"}, "base_url": "https://x"}},
    {"password": "p"},
    {"custom_config": {"headers": {"X-Trace": "1"}}},
    {"custom_config": {"headers": {"HoSt": "1"}}},
    {"custom_config": {"headers": {"bad name": "1"}}},
    {"custom_config": {"headers": {"X-A": "a\r\nb"}}},
    {"password": "p", "username": "u", "host": "h"},
    {"service_type": "postgresql"},
    {"service_type": "postgresql", "custom_config": {"connection_string": ""}},
    {"service_type": "postgresql", "host": "db"},
    {"service_type": "redis", "custom_config": {"url": "redis://cache:6379/2"}},
    {"service_type": "redis", "host": "h", "custom_config": {"url": "redis://cache:6379/2"}},
    {"service_type": "redis", "ssl_enabled": True, "custom_config": {"url": "redis://cache"}},
    {"service_type": "redis", "ssl_enabled": True, "custom_config": {"url": "rediss://cache"}},
    {"service_type": "redis", "password": "p", "custom_config": {"url": "redis://u@cache"}},
    {"service_type": "rabbitmq", "port": 5672, "custom_config": {"url": "amqp://mq"}},
    {"service_type": "rabbitmq", "ssl_enabled": True, "custom_config": {"url": "amqp://mq"}},
    {"service_type": "rabbitmq", "username": "", "custom_config": {"url": "amqp://u:p@mq"}},
    {"service_type": "qdrant", "host": "q", "custom_config": {"https": False}, "ssl_enabled": True},
    {"service_type": "qdrant", "custom_config": {"url": "https://q:6333"}, "ssl_enabled": True},
]


@pytest.mark.parametrize("body", API_BODIES)
def test_the_documented_create_body_accepts_what_the_model_accepts(body: dict[str, Any]) -> None:
    document = create_app(Settings()).openapi()
    schema = {**document["components"]["schemas"]["ServiceConnection"], "components": document["components"]}
    full = {"service_type": "api", "service_name": "a", **body}
    try:
        ServiceConnection.model_validate(full)
        accepted = True
    except ValidationError:
        accepted = False

    assert jsonschema.Draft202012Validator(schema).is_valid(full) == accepted


def test_the_asyncapi_document_declares_the_same_body_rules() -> None:
    http = create_app(Settings()).openapi()["components"]["schemas"]
    amqp = build_asyncapi()["components"]["schemas"]

    assert amqp["ServiceConnection"]["allOf"] == http["ServiceConnection"]["allOf"]
    assert amqp["DeadLetterSelection"]["oneOf"] == http["DeadLetterSelection"]["oneOf"]
