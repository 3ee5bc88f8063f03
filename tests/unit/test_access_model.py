"""The access model without a broker: grant grammar, what a principal may do, who pays a quota, and
how a republished request carries its sender (never a forged name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scf.fleet import access
from scf.fleet.access import AccessControl, carried, load_policy
from scf.fleet.settings import Settings
from scf.schemas.access import Grant, Principal, parse_grant, parse_grants


@pytest.mark.parametrize(
    "text",
    [
        "execute:read:",  # an empty glob must not mean "every connector"
        "execute:read:a/b",
        "execute:read:" + "*" * 9,
        "connectors:read:x",  # not a per-connector permission
        "nope:read",
        "x" * 161,
        "execute:read:" + "a" * 129,
    ],
)
def test_malformed_grants_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_grant(text)


def test_a_principal_may_do_what_its_grants_cover_and_no_more() -> None:
    reader = Principal("r", parse_grants(["execute:read:orders_*", "connectors:read"]))
    assert reader.allows("execute:read", "orders_eu")
    assert not reader.allows("execute:read", "billing")
    assert not reader.allows("execute:write", "orders_eu")
    assert not reader.allows("execute:read")  # a glob does not cover every connector
    assert reader.allows("connectors:read") and not reader.allows("connectors:write")
    admin = Principal("a", frozenset({Grant("*")}))
    assert admin.is_admin and admin.allows("keys:admin") and admin.allows("execute:write", "x")


@pytest.fixture
def control(tmp_path: Path) -> Iterator[AccessControl]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals:\n  alice: {grants: ['*'], rate: 5, burst: 7}\n")
    saved = dict(access._process)
    settings = Settings(
        scf_auth="on",
        scf_policy_file=policy,
        scf_rate_limit=11,
        scf_rate_burst=13,
        scf_amqp_url="amqp://fleet:pw@127.0.0.1:5672/",
        scf_trusted_forwarders="gateway",
    )
    try:
        yield AccessControl(settings)
    finally:
        access._process.clear()
        access._process.update(saved)


async def test_named_principals_pay_their_own_rate_and_strangers_the_default(control: AccessControl) -> None:
    alice = await control.named("alice", via="amqp")
    stranger = control.stranger("key-with-nothing", "key")
    assert (alice.rate, alice.burst) == (5, 7)
    assert (stranger.rate, stranger.burst) == (11, 13)  # never unlimited by accident
    assert stranger.grants == frozenset()


def test_a_republished_request_names_its_sender_and_drops_a_forged_name(control: AccessControl) -> None:
    forged = {"x-scf-principal": "alice", "x-scf-grants": "*", "other": 1}
    user, headers = carried("mallory", forged)
    assert user == "fleet"  # republished under the fleet's own login
    assert headers == {"other": 1, "x-scf-principal": "mallory", "x-scf-via": "amqp"}
    user, headers = carried("gateway", {"x-scf-principal": "key-1", "x-scf-via": "key"})
    assert (user, headers["x-scf-principal"], headers["x-scf-via"]) == ("fleet", "key-1", "key")


def test_a_broken_policy_file_stops_the_process(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("principals:\n  alice: {roles: [missing]}\n")
    with pytest.raises(ValueError, match="unknown roles"):
        load_policy(policy)
