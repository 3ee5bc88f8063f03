"""Broker URL lists: parsed strictly, one login and vhost, passwords never shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scf.app.cli.errors import explain
from scf.fleet import broker_endpoints as be
from scf.fleet.broker_endpoints import masked as masked_url
from scf.fleet.settings import Settings

ONE = "amqp://scf:s3cret@rabbit-1:5672/prod"
TWO = "amqp://scf:s3cret@rabbit-2:5673/prod"


def test_one_url_is_a_list_of_one_and_several_are_split_on_commas() -> None:
    assert be.endpoints(ONE) == [ONE]
    assert be.endpoints(f" {ONE} ,{TWO},") == [ONE, TWO]
    assert be.first(f"{ONE},{TWO}") == ONE


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "no broker URL"),
        (" , ", "no broker URL"),
        ("http://rabbit/", "not an amqp"),
        ("amqp:///prod", "not an amqp"),
        (f"{ONE},amqp://other:s3cret@rabbit-2/prod", "same user and vhost"),
        (f"{ONE},amqp://scf:s3cret@rabbit-2/staging", "same user and vhost"),
        (",".join([ONE] * 17), "at most 16"),
    ],
)
def test_a_list_that_cannot_be_one_fleets_broker_is_refused_quietly(value: str, why: str) -> None:
    with pytest.raises(be.BrokerUrlError, match=why) as refused:
        be.endpoints(value)
    assert "s3cret" not in str(refused.value)


def test_login_and_vhost_are_read_as_aio_pika_reads_them() -> None:
    assert be.login_of("amqp://us%40er:pw@h/") == "us@er"
    assert be.login_of("amqp://h/") == "guest"
    assert be.vhost_of("amqp://h") == be.vhost_of("amqp://h/") == "/"
    assert be.vhost_of("amqp://h/%2Fscf,amqp://h2/%2Fscf") == "/scf"


def test_every_password_of_a_list_is_masked() -> None:
    shown = masked_url(f"{ONE},{TWO}")
    assert shown == "amqp://scf:***@rabbit-1:5672/prod,amqp://scf:***@rabbit-2:5673/prod"
    assert be.masked("amqp://a:b@[::1]:5672/") == "amqp://a:***@[::1]:5672/"
    assert be.masked("amqp://a:b@h:99999999/") == "<unparsable URL>"  # no part of it is shown


def test_the_clis_line_names_the_list_without_passwords() -> None:
    line = explain(ConnectionRefusedError(111, f"refused {ONE},{TWO}"), f"{ONE},{TWO}").format_message()
    assert "s3cret" not in line
    assert "rabbit-2" in line


def test_settings_refuse_an_unusable_broker_list_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCF_AMQP_URL", f"{ONE},amqp://other:s3cret@rabbit-2/prod")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "s3cret" not in str(refused.value)
    monkeypatch.setenv("SCF_AMQP_URL", f"{ONE},{TWO}")
    assert Settings().amqp_url == f"{ONE},{TWO}"
