"""The OpenAPI document made as strict as the server: what FastAPI's generated document leaves out.

FastAPI documents each route from its signature; what the gateway enforces elsewhere is added here, so a
request valid by the document is one the server accepts (checked by schemathesis in
tests/integration/test_gateway_schemathesis.py):

- every protected route may answer 401, 403 and 429 (the access guard), every route with a body 400
  (malformed JSON) and 413, and a 422 is the typed `FailedReply`, never FastAPI's `HTTPValidationError`;
- `service_type` is one of the types this build knows (plugins included);
- on path-scoped routes the path names the connector: the execute body documents neither `service_name`
  nor `connection_id`, and `idempotency_key` travels in the `Idempotency-Key` header; the update body's
  `service_name` is optional. The server still accepts them in the body (the spec's shape) when they
  agree with the path and the header.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from scf.schemas.configs import config_model
from scf.schemas.configs.api import _HEADER_NAME as API_HEADER_NAME
from scf.schemas.configs.api import RESERVED_HEADERS
from scf.schemas.plugins import known_types
from scf.schemas.secret_fields import SAFE_HEADERS

SCHEMAS = "#/components/schemas/"
EXECUTE_PATH = "/connectors/{service_name}/execute"
UPDATE_PATH = "/connectors/{service_name}"
#: The execute body over HTTP: the path and the Idempotency-Key header carry these.
PATH_SCOPED_EXECUTE_FIELDS = ("service_name", "connection_id", "idempotency_key")
GUARD_STATUSES = {"401": "Unauthorized", "403": "Forbidden", "429": "Too Many Requests"}
BODY_STATUSES = {"400": "Bad Request", "413": "Content Too Large"}


def tighten(document: dict[str, Any]) -> dict[str, Any]:
    """Add what the server enforces to FastAPI's document (in place; answered for chaining)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _known_service_types(schemas)
    _path_scoped_bodies(document, schemas)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _declare_refusals(operation, _refusal_schema(method, path))
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def _refusal_schema(method: str, path: str) -> dict[str, str]:
    """A refusal's body, as `scf.gateway.errors.refusal_body` builds it."""
    name = "OperationResult" if method == "post" and path.endswith("/execute") else "FailedReply"
    return {"$ref": SCHEMAS + name}


def _declare_refusals(operation: dict[str, Any], schema: dict[str, str]) -> None:
    responses: dict[str, Any] = operation["responses"]
    refusals: dict[str, str] = {"422": "Unprocessable Content"}
    if operation.get("security"):
        refusals |= GUARD_STATUSES
    if "requestBody" in operation:
        refusals |= BODY_STATUSES
    for status, description in refusals.items():
        answer = responses.setdefault(status, {"description": description})
        answer["content"] = {"application/json": {"schema": schema}}


_USERINFO = r"(?:[A-Za-z0-9._~%!$&'()*+,;=-]+(?::[A-Za-z0-9._~%!$&'()*+,;=-]*)?@)?"
_HOST_PORT = r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::[0-9]{1,4})?"
#: Patterns for custom_config fields a validator parses (a subset of what it accepts: every value they
#: admit passes `scf.schemas.configs.redis.parse_url` / `scf.schemas.configs.rabbitmq.url_problem`).
CONFIG_PATTERNS: dict[str, dict[str, str]] = {
    "redis": {
        "url": rf"^rediss?://{_USERINFO}{_HOST_PORT}(?:/(?:[0-9]{{1,3}}|10[01][0-9]|102[0-3])?)?$",
        "key_prefix": r"^[!-~]{1,64}$",
    },
    "rabbitmq": {"url": rf"^amqps?://{_USERINFO}{_HOST_PORT}(?:/[A-Za-z0-9._~-]{{0,64}})?$"},
    "api": {"base_url": rf"^https?://{_HOST_PORT}(?:/[A-Za-z0-9._~%/-]{{0,64}})?$"},
    "minio": {
        "endpoint": r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(?::[1-9][0-9]{0,3})?$",
        "region": r"^[a-z0-9][a-z0-9-]{0,62}$",
        "bucket_name": r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
    },
    "qdrant": {"url": rf"^https?://{_HOST_PORT}(?:/[A-Za-z0-9._~%/-]{{0,64}})?$"},
    "elasticsearch": {
        "index": r"^(?:[a-z0-9][a-z0-9._-]{0,254}|\.[a-z0-9._-]{2,254}|\.[a-z0-9_-])$",
        # items of `hosts`: a node URL with a port and no credentials (`host_url_problem`)
        "hosts[]": r"^https?://[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,4}/?$",
    },
}


def _any_case(names: Iterable[str]) -> str:
    """A pattern matching any of `names` whatever the case (ECMA patterns have no `i` flag)."""
    spelled = (
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in n) for n in names
    )
    return "^(?:" + "|".join(sorted(spelled)) + ")$"


#: Other keywords for custom_config fields: rules a pattern cannot state exactly, stated as `not`.
CONFIG_EXTRAS: dict[str, dict[str, dict[str, Any]]] = {
    "api": {
        "health_path": {"not": {"anyOf": [{"pattern": "://"}, {"pattern": "^//"}]}},
        "headers": {
            "propertyNames": {
                "pattern": API_HEADER_NAME.pattern,
                "not": {"pattern": _any_case(RESERVED_HEADERS)},
            },
            "additionalProperties": {"type": "string", "pattern": "^[^\r\n\u0000]*$"},
        },
    },
    # the fleet's own key space `scf:`: neither inside it nor a prefix of it (`redis.prefix_problem`)
    "redis": {"key_prefix": {"not": {"anyOf": [{"pattern": "^scf:"}, {"enum": ["s", "sc", "scf"]}]}}},
}


def _url(schema: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"custom_config": {"properties": {"url": schema}}}}


def _unless_url(pattern: str, then: dict[str, Any]) -> dict[str, Any]:
    """`then` holds unless custom_config.url is unset or matches `pattern` (a rule on URLs outside it).

    Spelled as alternatives rather than `if`/`then`: generators cannot draw a value outside a pattern.
    """
    return {"anyOf": [_url({"type": "null"}), _url({"type": "string", "pattern": pattern}), then]}


_ABSENT = {"type": "null"}
_NOT_TRUE = {"enum": [False, None]}
_URL_ALONE = {"anyOf": [_url({"type": "null"}), {"properties": {"host": _ABSENT, "port": _ABSENT}}]}
#: Where custom_config.url is given (redis, rabbitmq, qdrant `check_connection`): host/port go unset, and
#: TLS, user and password are not asked for twice or against the URL's scheme. Each pattern is the part
#: of the declared URL language (CONFIG_PATTERNS) the rule does not concern.
URL_RULES: dict[str, list[dict[str, Any]]] = {
    "redis": [
        _URL_ALONE,
        _unless_url(
            "^rediss://",
            {"properties": {"ssl_enabled": _NOT_TRUE, "custom_config": {"properties": {"tls": _NOT_TRUE}}}},
        ),
        # not declared: a URL's user or password given again beside it (a third pattern on the same URL
        # is more than schemathesis 4.32 can generate from: "does not support this part of it")
    ],
    "rabbitmq": [
        _URL_ALONE,
        _unless_url("^amqps://", {"properties": {"ssl_enabled": _NOT_TRUE}}),
        # not declared: credentials in the URL and beside it (see redis)
    ],
    "qdrant": [
        _URL_ALONE,
        # not declared: an http:// url beside https/ssl_enabled (with rabbitmq's url rules, more patterns
        # than schemathesis 4.32 can generate from: "does not support this part of it")
        {
            "anyOf": [
                {"properties": {"custom_config": {"properties": {"https": {"enum": [True, None]}}}}},
                {"properties": {"ssl_enabled": _NOT_TRUE}},
            ]
        },
    ],
}
#: Types whose config refuses a password without a username (basic authentication).
PASSWORD_NEEDS_USERNAME = ("api", "elasticsearch")
#: Types that need `host` or this custom_config field (their `check_connection`).
HOST_OR = {
    "postgresql": "connection_string",
    "elasticsearch": "hosts",
    "minio": "endpoint",
    "rabbitmq": "url",
    "redis": "url",
}


def _known_service_types(schemas: dict[str, Any]) -> None:
    """`service_type` is one of the known types, and `custom_config` is that type's own model; the
    cross-field rules JSON Schema can state are declared per type (`if`/`then`)."""
    connection = schemas.get("ServiceConnection")
    if connection is None:
        return
    types = list(known_types())
    connection["properties"]["service_type"]["enum"] = types
    rules: list[dict[str, Any]] = []
    for service_type in types:
        model = config_model(service_type)
        then: list[dict[str, Any]] = []
        if model is not None:
            custom = model.model_json_schema(ref_template=SCHEMAS + "{model}")
            for name, definition in custom.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            for field, pattern in CONFIG_PATTERNS.get(service_type, {}).items():
                if field.endswith("[]"):  # the items of an array field
                    custom["properties"][field[:-2]]["items"] = {"type": "string", "pattern": pattern}
                else:
                    custom["properties"][field]["pattern"] = pattern
            for field, extra in CONFIG_EXTRAS.get(service_type, {}).items():
                custom["properties"][field].update(extra)
            then.append({"properties": {"custom_config": custom}})
        if service_type in PASSWORD_NEEDS_USERNAME:
            then.append(
                {
                    "if": {"required": ["password"], "properties": {"password": {"type": "string"}}},
                    "then": {
                        "required": ["username"],
                        "properties": {"username": {"type": "string", "minLength": 1}},
                    },
                }
            )
        if service_type == "api":
            then.extend(_api_credential_rules())
        then.extend(URL_RULES.get(service_type, []))
        if service_type in HOST_OR:
            then.append(
                {
                    "anyOf": [
                        {"required": ["host"], "properties": {"host": {"type": "string", "minLength": 1}}},
                        {
                            "required": ["custom_config"],
                            "properties": {
                                "custom_config": {
                                    "required": [HOST_OR[service_type]],
                                    "properties": {
                                        HOST_OR[service_type]: {
                                            "type": ["string", "array"],
                                            "minLength": 1,
                                            "minItems": 1,
                                        }
                                    },
                                }
                            },
                        },
                    ]
                }
            )
        if then:
            rules.append(
                {"if": {"properties": {"service_type": {"const": service_type}}}, "then": {"allOf": then}}
            )
    connection["allOf"] = rules


def _path_scoped_bodies(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    paths = document.get("paths", {})
    execute = paths.get(EXECUTE_PATH, {}).get("post")
    if execute is not None and "OperationRequest" in schemas:
        body = copy.deepcopy(schemas["OperationRequest"])
        for name in PATH_SCOPED_EXECUTE_FIELDS:
            body["properties"].pop(name, None)
        body["title"] = "ExecuteRequest"
        body["description"] = (
            "The execute body over HTTP: the path names the connector and the Idempotency-Key header "
            "carries the idempotency key. The spec's `connection_id`/`service_name` and `idempotency_key` "
            "are still accepted in the body when they agree with the path and the header."
        )
        schemas["ExecuteRequest"] = body
        _point_body(execute, "ExecuteRequest")
    update = paths.get(UPDATE_PATH, {}).get("put")
    if update is not None and "ServiceConnection" in schemas:
        body = copy.deepcopy(schemas["ServiceConnection"])
        body["required"] = [name for name in body.get("required", []) if name != "service_name"]
        body["properties"].pop("service_name", None)
        body["title"] = "ConnectorUpdate"
        body["description"] = (
            "A connector's new configuration; the path names it (a `service_name` in the body is accepted "
            "when it is the path's)."
        )
        schemas["ConnectorUpdate"] = body
        _point_body(update, "ConnectorUpdate")


def _point_body(operation: dict[str, Any], name: str) -> None:
    operation["requestBody"]["content"]["application/json"]["schema"] = {"$ref": SCHEMAS + name}


def _nonempty(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}


def _auth(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": ["custom_config"], "properties": {"custom_config": {"required": ["auth"], **schema}}}


def _api_credential_rules() -> list[dict[str, Any]]:
    """`ApiConfig.check_connection`'s rules on the connection's username and custom_config.auth."""
    auth_object = _auth({"properties": {"auth": {"type": "object"}}})
    basic = _auth({"properties": {"auth": {"type": "object", "properties": {"type": {"const": "basic"}}}}})
    basic_has_username = _auth({"properties": {"auth": {"type": "object", **_nonempty("username")}}})
    return [
        # credentials (a username, custom_config.auth, a header not known to be harmless) only go to the
        # configured origin: an origin, or none of them (alternatives, not `if`: see `_unless_url`)
        {
            "anyOf": [
                _nonempty("host"),
                {"required": ["custom_config"], "properties": {"custom_config": _nonempty("base_url")}},
                {
                    "properties": {
                        "username": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 0}]},
                        "custom_config": {
                            "properties": {
                                "auth": {"type": "null"},
                                "headers": {"propertyNames": {"pattern": _any_case(SAFE_HEADERS)}},
                            }
                        },
                    }
                },
            ]
        },
        # username/password is basic authentication: another auth type beside it is refused
        {"if": {"allOf": [_nonempty("username"), auth_object]}, "then": basic},
        # basic authentication takes its username from the connection or custom_config.auth: one of them
        {
            "if": basic,
            "then": {
                "oneOf": [
                    {"allOf": [_nonempty("username"), {"not": basic_has_username}]},
                    {"allOf": [{"not": _nonempty("username")}, basic_has_username]},
                ]
            },
        },
    ]
