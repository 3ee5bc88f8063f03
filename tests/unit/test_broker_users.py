"""`scf broker-users` without a broker: the permission regexes say what docs/broker-users.md says, names
are checked by shape (bounded), and a password only ever appears in the one printed report.

RabbitMQ matches permissions with Erlang's `re` (PCRE); these regexes use nothing Python's `re` reads
differently, so Python checks them here. The broker itself checks them in
tests/integration/test_broker_users.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click
import pytest

from scf.app.broker_users import (
    CLIENT,
    CLIENT_EVENTS,
    FLEET,
    Provisioned,
    Role,
    _default_target,
    _specs,
    amqp_url,
    check_user_name,
    render,
)
from scf.schemas.errors import ConfigurationError

DOC = (Path(__file__).resolve().parents[2] / "docs" / "broker-users.md").read_text(encoding="utf-8")
AIO_PIKA_QUEUE = "amq_" + "0123456789abcdef" * 2
BROKER_QUEUE = "amq.gen-JzTY20BRgKO-HjmUJj0wLg"
FLEET_NAMES = ["scf", "scf.ops", "scf.dlx", "scf.events", "scf.requests", "scf.ops.postgresql", "scf.dead"]
FLEET_NAMES += ["scf.retry.1s", "scf.retry.60s"]


def allows(regex: str, name: str) -> bool:
    return re.search(regex, name) is not None  # unanchored, as RabbitMQ matches


@pytest.mark.parametrize("name", [*FLEET_NAMES, AIO_PIKA_QUEUE, BROKER_QUEUE])
def test_the_fleet_configures_and_reads_every_fleet_name_and_its_own_queues(name: str) -> None:
    assert allows(FLEET.configure, name) and allows(FLEET.read, name) and allows(FLEET.write, name)


def test_the_fleet_replies_through_the_default_exchange_and_touches_nothing_else() -> None:
    assert allows(FLEET.write, "amq.default")
    for other in ("amq.topic", "scfx", "other", "amq_short", "my.scf", "amq.default.x", "xscf.ops"):
        assert not any(allows(regex, other) for regex in (FLEET.configure, FLEET.write, FLEET.read)), other


def test_a_client_publishes_to_scf_and_scf_ops_and_binds_only_to_scf_events() -> None:
    assert [n for n in FLEET_NAMES if allows(CLIENT.write, n)] == ["scf", "scf.ops"]
    assert [n for n in FLEET_NAMES if allows(CLIENT.read, n)] == ["scf.events"]
    assert [n for n in FLEET_NAMES if allows(CLIENT.configure, n)] == []
    assert not allows(CLIENT.write, "amq.default")


@pytest.mark.parametrize("queue", [AIO_PIKA_QUEUE, BROKER_QUEUE])
def test_a_client_declares_binds_and_consumes_its_server_named_queues(queue: str) -> None:
    assert allows(CLIENT.configure, queue) and allows(CLIENT.write, queue) and allows(CLIENT.read, queue)


@pytest.mark.parametrize("queue", ["amq_", "amq_XYZ", "amq_" + "0" * 33, "amq.gen-", "amq_gen", "scf.amq_x"])
def test_names_that_only_look_server_named_are_not(queue: str) -> None:
    assert not allows(CLIENT.configure, queue) and not allows(CLIENT.read, queue)


def test_a_client_binds_registry_and_health_events_only_and_publishes_none() -> None:
    assert CLIENT_EVENTS.exchange == "scf.events"
    bindable = ["connector.#", "connector.deleted.x", "health.*"]
    refused = ["#", "*.*", "operation.cancel.*", "operation.#", "connector", ""]
    assert all(allows(CLIENT_EVENTS.read, key) for key in bindable)
    assert not any(allows(CLIENT_EVENTS.read, key) for key in refused)
    assert not allows(CLIENT_EVENTS.write, "connector.deleted.x")


def test_the_documentation_prints_the_exact_regexes() -> None:
    for regex in (*vars(FLEET).values(), *vars(CLIENT).values(), CLIENT_EVENTS.read):
        in_a_table = regex.replace("|", "\\|")
        assert f"`{in_a_table}`" in DOC, regex


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "a:b", "x" * 65, "ü", "a\nb", "a%2F"])
def test_user_names_are_plain(name: str) -> None:
    with pytest.raises(ConfigurationError):
        check_user_name(name)


def test_a_huge_user_name_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigurationError) as caught:
        check_user_name("a" * 10_000_000)

    assert time.perf_counter() - started < 0.5
    assert len(caught.value.message) < 200


def test_the_report_shows_each_new_password_once_and_the_forwarder() -> None:
    done = [
        Provisioned("scf-fleet", Role.FLEET, "pw-fleet/+:@", created=True),
        Provisioned("scf-gateway", Role.GATEWAY, None, created=False),
        Provisioned("billing", Role.CLIENT, "pw-client", created=True),
    ]

    shown = render(done, "scf", "broker:5672")

    assert shown.count("pw-fleet/+:@") == 1  # its URL carries it percent-encoded
    assert "SCF_AMQP_URL=amqp://scf-fleet:pw-fleet%2F%2B%3A%40@broker:5672/scf" in shown
    assert "scf-gateway  (existing password kept)" in shown
    assert shown.splitlines()[-1] == "SCF_TRUSTED_FORWARDERS=scf-gateway"
    assert "pw-fleet" not in repr(done) and "pw-client" not in repr(done)


def test_the_default_vhost_and_host_come_from_the_amqp_url() -> None:
    assert _default_target("amqp://u:p@rabbit:5673/") == ("/", "rabbit:5673")
    assert _default_target("amqp://u:p@rabbit/scf%2Fprod") == ("scf/prod", "rabbit:5672")
    assert amqp_url("u", "p", "h:1", "/") == "amqp://u:p@h:1/%2F"


def test_one_name_cannot_have_two_roles() -> None:
    with pytest.raises(click.BadParameter):
        _specs("same", None, "same", None, ())
    assert [s.role for s in _specs("", None, "gw", None, ("a", "b"))] == [
        Role.GATEWAY,
        Role.CLIENT,
        Role.CLIENT,
    ]
