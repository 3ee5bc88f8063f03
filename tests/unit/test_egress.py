"""The deployment egress policy (scf/connectors/egress): grammar, verdicts, endpoints, widens, masked."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from scf.connectors.base import ServiceConnector
from scf.connectors.egress import (
    EgressPolicy,
    Endpoint,
    connection_endpoints,
    endpoints_of,
    install,
    masked,
    parse_rule,
    parse_rules,
    widens,
)
from scf.connectors.registry import connector_class
from scf.connectors.web.policy import GuardPolicy, check_url
from scf.schemas.configs.api import HostRule
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import (
    ConnectorError,
    ErrorCategory,
    ErrorCode,
    PermanentError,
    SecurityError,
    TransientError,
)


def fake_resolver(table: Mapping[str, Sequence[str]]) -> Any:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


async def refused(policy: EgressPolicy, *endpoints: Endpoint, **names: Sequence[str]) -> SecurityError:
    with pytest.raises(SecurityError) as caught:
        await policy.check(list(endpoints), resolver=fake_resolver(dict(names)))
    assert caught.value.code == ErrorCode.EGRESS_DENIED
    assert caught.value.message == "the connector's endpoint is not allowed by the egress policy"
    return caught.value


# --- grammar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/8", HostRule(network=ipaddress.ip_network("10.0.0.0/8"))),
        ("10.0.0.0/8:5432", HostRule(network=ipaddress.ip_network("10.0.0.0/8"), port=5432)),
        ("[fd00::/8]:5432", HostRule(network=ipaddress.ip_network("fd00::/8"), port=5432)),
        ("fd00::/8", HostRule(network=ipaddress.ip_network("fd00::/8"))),
        ("127.0.0.2", HostRule(network=ipaddress.ip_network("127.0.0.2/32"))),
        ("[::1]:5432", HostRule(network=ipaddress.ip_network("::1/128"), port=5432)),
        ("DB.Example.com:5432", HostRule(hostname="db.example.com", port=5432)),
        ("*.internal", HostRule(hostname="*.internal")),
    ],
)
def test_rule_grammar(text: str, expected: HostRule) -> None:
    assert parse_rule(text) == expected


@pytest.mark.parametrize(
    "text",
    ["10.0.0.1/8", "10.0.0.0/8:0", "10.0.0.0/8:99999", "fd00::/8:5432", "[fd00::/8]x", "127.1", "*.1.2.3.4"],
)
def test_bad_rules_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rule(text)


def test_lists_skip_blanks_and_are_bounded() -> None:
    assert len(parse_rules(" 10.0.0.0/8 , ,db.example.com:5432,")) == 2
    assert parse_rules("") == ()
    with pytest.raises(ValueError, match="more than"):
        parse_rules(",".join(["10.0.0.1"] * 2000))
    with pytest.raises(ValueError, match="longer than"):
        parse_rule("a" * 10_000)


def test_from_settings_reads_both_lists() -> None:
    class Settings:
        scf_egress_allow = "10.0.0.0/8"
        scf_egress_deny = "10.9.0.0/16:5432"

    policy = EgressPolicy.from_settings(Settings())
    assert len(policy.allow) == 1 and policy.deny[0].port == 5432


# --- verdicts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "169.254.1.1",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "::ffff:169.254.169.254",
        "metadata.google.internal",
        "metadata",
        "METADATA.google.internal.",
    ],
)
async def test_builtin_denials_hold_even_with_allow_everything(host: str) -> None:
    policy = EgressPolicy.build(allow="0.0.0.0/0,::/0,*.internal,metadata")
    error = await refused(policy, Endpoint(host, 80))
    assert error.detail is not None and error.category is ErrorCategory.SECURITY


async def test_empty_allow_admits_what_is_not_denied() -> None:
    policy = EgressPolicy()
    pinned = await policy.check(
        [Endpoint("127.0.0.1", 5432), Endpoint("db", 5432)], resolver=fake_resolver({"db": ["10.1.2.3"]})
    )
    assert [p.addresses for p in pinned] == [("127.0.0.1",), ("10.1.2.3",)]


async def test_deny_wins_over_allow() -> None:
    policy = EgressPolicy.build(allow="10.0.0.0/8", deny="10.0.0.5")
    await refused(policy, Endpoint("10.0.0.5", 5432))
    assert (await policy.check([Endpoint("10.0.0.6", 5432)]))[0].addresses == ("10.0.0.6",)


async def test_deny_by_port_name_and_wildcard() -> None:
    policy = EgressPolicy.build(deny="127.0.0.1:6379,*.corp.example,admin.example.com")
    await refused(policy, Endpoint("127.0.0.1", 6379))
    await policy.check([Endpoint("127.0.0.1", 5432)])
    error = await refused(policy, Endpoint("db.corp.example", 5432))
    assert "db.corp.example" in (error.detail or "")
    await refused(policy, Endpoint("ADMIN.example.com.", 443))


async def test_allow_list_confines() -> None:
    policy = EgressPolicy.build(allow="10.0.0.0/8:5432,db.example.com")
    await policy.check([Endpoint("10.1.1.1", 5432)])
    await refused(policy, Endpoint("10.1.1.1", 6379))
    await refused(policy, Endpoint("192.0.2.1", 5432))
    names = {"db.example.com": ["192.0.2.7"], "other.example.com": ["192.0.2.8"]}
    await policy.check([Endpoint("db.example.com", 5432)], resolver=fake_resolver(names))
    await refused(policy, Endpoint("other.example.com", 5432), **names)


async def test_a_name_resolving_to_a_denied_address_is_refused() -> None:
    policy = EgressPolicy.build(deny="10.9.0.0/16")
    error = await refused(
        policy, Endpoint("db.example.com", 5432), **{"db.example.com": ["192.0.2.1", "10.9.1.1"]}
    )
    assert "10.9.1.1" in (error.detail or "")
    error = await refused(
        EgressPolicy(), Endpoint("rebind.example", 80), **{"rebind.example": ["169.254.169.254"]}
    )
    assert "metadata" in (error.detail or "")
    # an allowed name does not lift a built-in denial of what it resolves to
    await refused(
        EgressPolicy.build(allow="*.example"), Endpoint("x.example", 80), **{"x.example": ["fe80::1"]}
    )


async def test_link_local_only_by_an_explicit_link_local_allow_entry() -> None:
    explicit = EgressPolicy.build(allow="169.254.10.0/24")
    await explicit.check([Endpoint("169.254.10.7", 8080)])
    await refused(explicit, Endpoint("169.254.169.254", 80))  # metadata stays denied
    await refused(EgressPolicy.build(allow="0.0.0.0/0"), Endpoint("169.254.10.7", 8080))


async def test_resolution_failures() -> None:
    policy = EgressPolicy(resolve_timeout=0.05)
    with pytest.raises(TransientError) as caught:
        await policy.check([Endpoint("nowhere.example", 80)], resolver=fake_resolver({}))
    assert caught.value.code == ErrorCode.CONNECTION_FAILED

    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return []

    with pytest.raises(TransientError):
        await policy.check([Endpoint("slow.example", 80)], resolver=slow)
    # at create the connect-time check follows: an unresolvable name is judged by its name only
    lenient = await policy.check(
        [Endpoint("later.example", 80)], resolver=fake_resolver({}), require_resolution=False
    )
    assert lenient[0].addresses == ()
    await refused(EgressPolicy(), Endpoint("scoped.example", 80), **{"scoped.example": ["fe80::1%eth0"]})
    await refused(EgressPolicy(), Endpoint("/var/run/postgresql", 5432))  # a Unix socket is no endpoint


async def test_names_resolve_at_once_within_one_timeout() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return []

    started = time.monotonic()
    endpoints = [Endpoint(f"h{i}.example", 80) for i in range(20)]
    policy = EgressPolicy(resolve_timeout=0.1)
    lenient = await policy.check(endpoints, resolver=slow, require_resolution=False)
    assert time.monotonic() - started < 1.5 and len(lenient) == 20


async def test_a_denied_name_is_never_resolved() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["192.0.2.1"]

    with pytest.raises(SecurityError):
        await EgressPolicy.build(deny="secret.example").check(
            [Endpoint("secret.example", 1)], resolver=resolver
        )
    assert asked == []


# --- endpoints of each connector type ------------------------------------------------------------------


def conn(service_type: str, custom_config: dict[str, Any] | None = None, **fields: Any) -> ServiceConnection:
    return ServiceConnection.parse(
        {
            "service_name": "egress-test",
            "service_type": service_type,
            "custom_config": custom_config or {},
            **fields,
        }
    )


E = Endpoint


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (conn("postgresql", host="db.example.com"), [E("db.example.com", 5432)]),
        (conn("postgresql", host="10.0.0.1", port=6543), [E("10.0.0.1", 6543)]),
        (
            conn("postgresql", {"connection_string": "postgresql://u:p%40@h1:5433,[::1],h3/db"}),
            [E("h1", 5433), E("::1", 5432), E("h3", 5432)],
        ),
        (conn("postgresql", {"connection_string": "postgresql:///db?host=qh&port=7000"}), [E("qh", 7000)]),
        (conn("postgresql", {"connection_string": "postgresql:///db"}), [E("localhost", 5432)]),
        (
            conn("postgresql", {"connection_string": "postgresql://u@dsnhost/db"}, host="override", port=1),
            [E("override", 1)],
        ),
        (conn("redis", host="cache", failover_hosts=["cache2:7000"]), [E("cache", 6379), E("cache2", 7000)]),
        (conn("redis", {"url": "rediss://:pw@r.example.com:6380/2"}), [E("r.example.com", 6380)]),
        (conn("rabbitmq", host="mq"), [E("mq", 5672)]),
        (conn("rabbitmq", host="mq", ssl_enabled=True), [E("mq", 5671)]),
        (conn("rabbitmq", {"url": "amqps://u:p@mq.example.com/vh"}), [E("mq.example.com", 5671)]),
        (conn("elasticsearch", host="es"), [E("es", 9200)]),
        (
            conn("elasticsearch", {"hosts": ["https://n1:9201", "http://[fd00::1]:9200"]}),
            [E("n1", 9201), E("fd00::1", 9200)],
        ),
        (conn("minio", {"endpoint": "s3.example.com:9000"}), [E("s3.example.com", 9000)]),
        (conn("minio", {"endpoint": "s3.example.com", "secure": True}), [E("s3.example.com", 443)]),
        (conn("minio", host="m"), [E("m", 80)]),
        (conn("qdrant", {"url": "https://q.example.com"}), [E("q.example.com", 6333)]),
        (conn("qdrant", {"prefer_grpc": True}, host="q", port=7333), [E("q", 7333), E("q", 6334)]),
        (conn("qdrant", {"path": ":memory:"}), []),
        (conn("api", {"base_url": "https://api.example.com/v1"}), [E("api.example.com", 443)]),
        (conn("api", {"base_url": "http://169.254.169.254:8080/"}), [E("169.254.169.254", 8080)]),
        (conn("api", host="svc", ssl_enabled=True), [E("svc", 443)]),
        (conn("api"), []),
        (conn("csv"), []),
        (conn("pdf", {"url_allowed_hosts": ["10.0.0.1"]}), []),
    ],
)
def test_connection_endpoints(connection: ServiceConnection, expected: list[Endpoint]) -> None:
    assert connection_endpoints(connection) == expected


def test_endpoints_of_a_bare_config() -> None:
    assert endpoints_of("redis", {"url": "redis://r:1/0"}) == [E("r", 1)]
    assert endpoints_of("elasticsearch", {"hosts": ["http://n:9200"]}) == [E("n", 9200)]
    assert endpoints_of("csv", {}) == []


# --- widens, masked --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, False),
        ({"allowed_hosts": []}, False),
        ({"allowed_hosts": ["10.0.0.1"]}, True),
        ({"url_allowed_hosts": ["*.corp"]}, True),
        ({"allow_private": True}, True),
        ({"url_allow_private": True}, True),
        ({"allow_private": False, "url_allow_private": False}, False),
        ({"allow_private": "true"}, True),
        ({"url_allow_private": 1}, True),
        ({"allow_private": "false", "allowed_hosts": None}, False),
        ({"allowed_hosts": "10.0.0.1"}, True),
        ({"service_type": "api", "custom_config": {"allowed_hosts": ["x"]}}, True),
        ({"service_type": "api", "custom_config": {"allowed_hosts": []}}, False),
        (None, False),
    ],
)
def test_widens_a_mapping(config: dict[str, Any] | None, expected: bool) -> None:
    assert widens(config) is expected


def test_widens_a_parsed_model() -> None:
    from scf.schemas.configs import parse_type_config

    assert widens(parse_type_config("api", {"allowed_hosts": ["10.0.0.1"]}))
    assert widens(parse_type_config("csv", {"url_allow_private": True}))
    assert not widens(parse_type_config("pdf", {}))
    assert not widens(parse_type_config("redis", {}))


@pytest.mark.parametrize(
    "error",
    [
        TransientError(
            "cannot reach the service", code=ErrorCode.CONNECTION_FAILED, detail="ECONNREFUSED 10.0.0.1"
        ),
        TransientError("the service did not answer in time", code=ErrorCode.TIMEOUT, detail="10.0.0.1:22"),
        TransientError(
            "cannot resolve the connector's host", code=ErrorCode.CONNECTION_FAILED, detail="x: gaierror"
        ),
    ],
)
def test_masked_merges_every_connect_failure(error: ConnectorError) -> None:
    shown = masked(error)
    assert isinstance(shown, TransientError)
    assert (shown.message, shown.code, shown.detail) == (
        "could not connect to the service",
        "CONNECTION_FAILED",
        None,
    )


def test_masked_leaves_other_errors() -> None:
    for error in (
        SecurityError("bad password", code=ErrorCode.AUTHENTICATION_FAILED),
        PermanentError("bad query", code=ErrorCode.QUERY_FAILED),
    ):
        assert masked(error) is error


# --- the SSRF guard and the connect-time hook honour the deployment policy --------------------------------


async def test_allowed_hosts_cannot_re_allow_what_the_deployment_denies() -> None:
    deployment = EgressPolicy.build(deny="127.0.0.2")
    guard = GuardPolicy.build(["127.0.0.2", "127.0.0.3"])
    widened = GuardPolicy(allowed_hosts=guard.allowed_hosts, egress=deployment)
    with pytest.raises(SecurityError) as caught:
        await check_url("http://127.0.0.2:8080/x", widened)
    assert caught.value.code == ErrorCode.EGRESS_DENIED
    assert (await check_url("http://127.0.0.3:8080/x", widened)).addresses == ("127.0.0.3",)
    linked = GuardPolicy(
        allowed_hosts=GuardPolicy.build(["169.254.0.0/16"]).allowed_hosts, egress=EgressPolicy()
    )
    with pytest.raises(SecurityError, match="egress policy"):
        await check_url("http://169.254.169.254/latest/meta-data", linked)


@pytest.fixture
def installed_policy() -> Iterator[None]:
    install(EgressPolicy.build(deny="127.0.0.2"))
    try:
        yield
    finally:
        install(None)


async def test_the_guard_uses_the_installed_policy(installed_policy: None) -> None:
    with pytest.raises(SecurityError) as caught:
        await check_url("http://127.0.0.2/", GuardPolicy.build(["127.0.0.2"]))
    assert caught.value.code == ErrorCode.EGRESS_DENIED


async def open_refusal(connection: ServiceConnection) -> ConnectorError:
    connector: ServiceConnector = connector_class(connection.service_type)(connection)
    with pytest.raises(ConnectorError) as caught:
        await connector.open()
    assert not connector.is_open
    return caught.value


async def test_open_rechecks_the_endpoints(installed_policy: None) -> None:
    metadata = await open_refusal(conn("postgresql", host="169.254.169.254", connection_timeout=1))
    assert metadata.code == ErrorCode.EGRESS_DENIED
    denied = await open_refusal(conn("redis", host="127.0.0.2", port=6379, connection_timeout=1))
    assert denied.code == ErrorCode.EGRESS_DENIED
    result = await connector_class("rabbitmq")(
        conn("rabbitmq", host="127.0.0.2", connection_timeout=1)
    ).check()
    assert result.status == "failed" and result.error is not None
    assert result.error.code == ErrorCode.EGRESS_DENIED


async def test_without_a_policy_nothing_is_checked() -> None:
    connector = connector_class("postgresql")(conn("postgresql", host="169.254.169.254"))
    await connector.egress_check()  # no policy installed (unit tests, embedded use): no refusal
    assert connector.egress_pinned == []
