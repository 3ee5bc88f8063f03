"""`custom_config` of the api connector: auth union, host rules, the rules that span the connection."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from scf.schemas.configs.api import ApiConfig, HostRule, host_kind, parse_host_rule
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError

SECRET = "config-canary-secret-91ad"


def connection(custom_config: dict[str, Any], **fields: Any) -> ServiceConnection:
    return ServiceConnection.parse(
        {"service_type": "api", "service_name": "cfg", "custom_config": custom_config, **fields}
    )


def test_defaults_are_safe() -> None:
    config = ApiConfig()

    assert config.allow_private is False
    assert config.allowed_hosts == []
    assert config.max_response_bytes == 16 * 1024 * 1024
    assert (config.max_pages, config.max_records) == (100, 100_000)
    assert (config.follow_redirects, config.max_redirects) == (True, 5)
    assert config.verify_tls is True


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "basic", "username": "u", "password": SECRET},
        {"type": "api_key", "api_key": SECRET, "name": "X-Key"},
        {"type": "api_key", "api_key": SECRET, "name": "key", "location": "query"},
        {"type": "bearer", "token": SECRET},
        {
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example.com/token",
            "client_id": "c",
            "client_secret": SECRET,
        },
        {"type": "jwt", "secret": SECRET},
        {"type": "aws_sigv4", "access_key_id": "AKID", "secret_access_key": SECRET, "region": "eu-west-1"},
    ],
)
def test_every_auth_method_parses_and_hides_its_secret(auth: dict[str, Any]) -> None:
    conn = connection({"base_url": "https://api.example.com", "auth": auth})
    config = ApiConfig.model_validate(conn.custom_config)

    assert config.auth is not None and config.auth.type == auth["type"]
    assert SECRET not in repr(config)
    assert SECRET not in str(conn.public_view())


def test_mtls_names_files_only() -> None:
    config = ApiConfig.model_validate(
        {
            "base_url": "https://x.example",
            "auth": {"type": "mtls", "cert_file": "/c.pem", "key_file": "/k.pem"},
        }
    )

    assert config.auth is not None and config.auth.type == "mtls"


@pytest.mark.parametrize(
    ("custom_config", "fields", "fragment"),
    [
        ({"auth": {"type": "bearer", "token": "t"}}, {}, "credentials only go to that origin"),
        ({"base_url": "ftp://x.example"}, {}, "http:// or https://"),
        ({"base_url": "https://user:pw@x.example"}, {}, "must not carry credentials"),
        ({"base_url": "https://x.example/?a=1"}, {}, "query string"),
        (
            {"base_url": "https://x.example", "auth": {"type": "jwt", "algorithm": "RS256", "secret": "s"}},
            {},
            "RS256",
        ),
        ({"base_url": "https://x.example", "auth": {"type": "basic"}}, {}, "needs a username"),
        (
            {"base_url": "https://x.example", "auth": {"type": "bearer", "token": "t"}},
            {"username": "u"},
            "basic",
        ),
        ({"allowed_hosts": ["127.1"]}, {}, "non-canonical"),
        ({"allowed_hosts": ["10.0.0.1/8"]}, {}, "not a valid network"),
        ({"allowed_hosts": ["host:99999"]}, {}, "invalid port"),
        ({"headers": {"Host": "evil"}}, {}, "set by the transport"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, {}, "line break"),
        ({"pagination": {"type": "cursor"}}, {}, "cursor_path"),
        ({"headers": {"Authorization": "Bearer t"}}, {}, "credentials only go to that origin"),
        ({"base_url": "https://x.example", "health_path": "https://y.example/h"}, {}, "not a URL"),
        ({"unknown": 1}, {}, "Extra inputs"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(
    custom_config: dict[str, Any], fields: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection(custom_config, **fields)

    assert fragment in caught.value.message


def test_a_bad_config_never_echoes_its_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        connection({"auth": {"type": "bearer", "token": SECRET, "extra": SECRET}})

    assert SECRET not in caught.value.message


def test_the_connections_username_and_password_mean_basic_auth() -> None:
    conn = connection({"base_url": "https://x.example"}, username="u", password=SECRET)

    assert conn.secret_password() == SECRET


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("api.internal", HostRule(hostname="api.internal")),
        ("API.Internal:8443", HostRule(hostname="api.internal", port=8443)),
        ("*.corp.example", HostRule(hostname="*.corp.example")),
        ("10.0.0.0/8", HostRule(network=ipaddress.ip_network("10.0.0.0/8"))),
        ("127.0.0.1:8080", HostRule(network=ipaddress.ip_network("127.0.0.1/32"), port=8080)),
        ("[::1]:8080", HostRule(network=ipaddress.ip_network("::1/128"), port=8080)),
        ("fd00::/8", HostRule(network=ipaddress.ip_network("fd00::/8"))),
    ],
)
def test_host_rules_parse(entry: str, rule: HostRule) -> None:
    assert parse_host_rule(entry) == rule


def test_host_rules_match_host_port_and_address() -> None:
    named = parse_host_rule("api.internal:8443")
    wildcard = parse_host_rule("*.corp.example")
    network = parse_host_rule("10.0.0.0/8")

    assert named.matches_host("API.internal.", 8443)
    assert not named.matches_host("api.internal", 443)
    assert wildcard.matches_host("a.b.corp.example", 443)
    assert not wildcard.matches_host("corp.example", 443)
    assert not wildcard.matches_host("evilcorp.example", 443)
    assert network.matches_address(ipaddress.ip_address("10.1.2.3"), 80)
    assert not network.matches_address(ipaddress.ip_address("::ffff:10.1.2.3"), 80)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.0.1.", "0x7f.0.0.1", "a.0x7f", "1.2.3.04"],
)
def test_numeric_hosts_in_odd_forms_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="non-canonical"):
        host_kind(host)


def test_canonical_addresses_and_names_are_told_apart() -> None:
    assert host_kind("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert host_kind("::ffff:127.0.0.1") == ipaddress.ip_address("::ffff:127.0.0.1")
    assert host_kind("Example.COM.") == "example.com"
    assert host_kind("1password.com") == "1password.com"
    with pytest.raises(ValueError):
        host_kind("bad_host%20")
    with pytest.raises(ValueError):
        host_kind("fe80::1%eth0")
