"""A worker knows at start which connector types this install can run (scf/extras.py, cli roles)."""

from __future__ import annotations

import sys

import click
import pytest

from scf.app.cli.roles import _types
from scf.connectors.registry import available_types, connector_class
from scf.extras import missing_extra, split_installed
from scf.schemas.errors import ConfigurationError


def test_every_built_in_type_runs_on_the_dev_install() -> None:
    assert split_installed(available_types()) == (available_types(), {})


def test_a_type_whose_driver_is_missing_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pglast", None)  # as if the postgresql extra were not installed
    served, missing = split_installed(["rabbitmq", "postgresql", "csv", "acme-plugin"])
    assert served == ["rabbitmq", "csv", "acme-plugin"]
    assert missing == {
        "postgresql": "service type 'postgresql' needs the 'postgresql' extra (module 'pglast' is not "
        "installed): pip install 'service-connector-factory[postgresql]'"
    }
    assert missing_extra("csv") is None


def test_a_worker_for_all_types_leaves_out_those_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    served = _types("all")
    assert "qdrant" not in served and "postgresql" in served and "rabbitmq" in served
    assert "not served here: service type 'qdrant' needs the 'qdrant' extra" in capsys.readouterr().err


def test_a_worker_named_for_a_type_it_cannot_run_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(click.ClickException) as caught:
        _types("csv,postgresql")
    assert caught.value.message.startswith("service type 'postgresql' needs the 'postgresql' extra")


def test_a_built_in_type_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("scf.connectors.postgresql")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(ConfigurationError) as caught:
        connector_class("postgresql")
    assert caught.value.message == (
        "the postgresql connector needs asyncpg that is not installed: "
        "pip install 'service-connector-factory[postgresql]'"
    )
