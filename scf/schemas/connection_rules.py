"""A connector's create body (`ServiceConnection`) as JSON Schema as strict as its validators.

Pydantic documents each field alone; the type's `custom_config` model and the cross-field rules of each
config's `check_connection` live in code. What JSON Schema can state is added here, for the OpenAPI
document (`scf.gateway.contract`) and the AsyncAPI one alike: `service_type` is a known type, each type's
`custom_config` its own model, and the rules as `if`/`then` or alternatives. Patterns for fields a
validator parses admit only values it accepts (tests/unit/test_gateway_contract.py draws from them).
Rules left undeclared are named where they would be (schemathesis 4.32 cannot generate from them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from scf.schemas.configs import config_model
from scf.schemas.configs.api import _HEADER_NAME as API_HEADER_NAME
from scf.schemas.configs.api import RESERVED_HEADERS
from scf.schemas.plugins import known_types
from scf.schemas.secret_fields import SAFE_HEADERS

SCHEMAS = "#/components/schemas/"
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


def declare_connection_rules(schemas: dict[str, Any], service_types: Iterable[str] | None = None) -> None:
    """`service_type` is one of the known types, and `custom_config` is that type's own model; the
    cross-field rules JSON Schema can state are declared per type (`if`/`then`)."""
    connection = schemas.get("ServiceConnection")
    if connection is None:
        return
    types = list(known_types() if service_types is None else service_types)
    connection["properties"]["service_type"]["enum"] = types
    rules: list[dict[str, Any]] = []
    for service_type in types:
        then = _type_rules(service_type, schemas)
        if then:
            rules.append(
                {"if": {"properties": {"service_type": {"const": service_type}}}, "then": {"allOf": then}}
            )
    connection["allOf"] = rules


def _custom_config(service_type: str, schemas: dict[str, Any]) -> dict[str, Any] | None:
    """The type's custom_config model as JSON Schema, with the patterns its validators imply."""
    model = config_model(service_type)
    if model is None:
        return None
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
    return custom


def _host_or(field: str) -> dict[str, Any]:
    """`host`, or custom_config's own address field (`check_connection`: "needs host or ...")."""
    address = {"type": ["string", "array"], "minLength": 1, "minItems": 1}
    return {
        "anyOf": [
            {"required": ["host"], "properties": {"host": {"type": "string", "minLength": 1}}},
            {
                "required": ["custom_config"],
                "properties": {"custom_config": {"required": [field], "properties": {field: address}}},
            },
        ]
    }


def _type_rules(service_type: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    then: list[dict[str, Any]] = []
    custom = _custom_config(service_type, schemas)
    if custom is not None:
        then.append({"properties": {"custom_config": custom}})
    if service_type in PASSWORD_NEEDS_USERNAME:
        username = {"required": ["username"], "properties": {"username": {"type": "string", "minLength": 1}}}
        password = {"required": ["password"], "properties": {"password": {"type": "string"}}}
        then.append({"if": password, "then": username})
    if service_type == "api":
        then.extend(_api_credential_rules())
    then.extend(URL_RULES.get(service_type, []))
    if service_type in HOST_OR:
        then.append(_host_or(HOST_OR[service_type]))
    return then


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
