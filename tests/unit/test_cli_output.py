"""The CLI's answer formats, progress lines and one-line errors, without a broker."""

from __future__ import annotations

import json

import click
import pytest
import yaml
from click.testing import CliRunner

from scf.app.cli.errors import CliError, explain
from scf.app.cli.output import _rows, emit
from scf.app.cli.progress import OperationProgress
from scf.fleet.broker_endpoints import masked as masked_url
from scf.schemas.errors import ErrorCode, PermanentError


def show(value: object, fmt: str) -> str:
    @click.command()
    def command() -> None:
        emit(value, fmt)  # type: ignore[arg-type]

    return CliRunner().invoke(command, []).output


def test_every_format_ends_with_a_newline_and_round_trips() -> None:
    value = [{"service_name": "a", "paused": False}, {"service_name": "b", "paused": True}]
    assert json.loads(show(value, "json")) == value
    assert yaml.safe_load(show(value, "yaml")) == value
    table = show(value, "table")
    assert "service_name" in table and "a" in table and "b" in table
    for fmt in ("json", "yaml", "table"):
        assert show(value, fmt).endswith("\n")


def test_a_page_is_shown_by_its_list_and_an_object_as_fields() -> None:
    page = {"connectors": [{"service_name": "x"}], "total": 1}
    assert _rows(page) == [["service_name"], ["x"]]
    assert _rows({"a": 1, "b": {"c": 2}}) == [["field", "value"], ["a", "1"], ["b", '{"c": 2}']]
    long = {"a": "z" * 500}
    assert len(_rows(long)[1][1]) == 80  # type: ignore[index]


def test_plain_progress_lines_come_at_most_every_interval(capsys: pytest.CaptureFixture[str]) -> None:
    progress = OperationProgress("ingest on x", terminal=False, plain_every=3600)
    with progress:
        for done in range(0, 5000, 100):
            progress.update({"records_done": done})
        progress.finish(5000)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [lines[-1]] and lines[-1].startswith("scf: ingest on x: 5000 records")
    assert lines[-1].endswith("(done)")


def test_progress_shows_a_total_and_an_eta_when_the_fleet_knows_it() -> None:
    progress = OperationProgress("x", terminal=False)
    progress.update({"records_done": 10, "records_total": 100})
    assert "10/100 records" in progress.line() and "ETA" in progress.line()
    progress.update({"records_done": "many"})  # a hostile or odd message is ignored
    assert progress.done == 10


def test_urls_are_shown_without_their_password() -> None:
    assert masked_url("amqp://u:p%40ss@host:5672/v") == "amqp://u:***@host:5672/v"
    assert masked_url("amqp://host/") == "amqp://host/"


def test_errors_are_explained_by_a_table() -> None:
    url = "amqp://guest:secret@127.0.0.1:5999/"
    refused = explain(ConnectionRefusedError(111, "Connect call failed"), url)
    assert refused.exit_code == 3 and "connection refused" in refused.format_message()
    assert "secret" not in refused.format_message()
    typed = explain(PermanentError("no such connector", code=ErrorCode.CONNECTOR_NOT_FOUND), url)
    assert typed.exit_code == 1
    assert typed.format_message().startswith("CONNECTOR_NOT_FOUND: no such connector: scf connector list")
    odd = explain(ValueError("boom"), url)
    assert isinstance(odd, CliError) and "--debug" in odd.format_message()
    quoting = explain(RuntimeError(f"cannot use {url}"), url)
    assert "secret" not in quoting.format_message() and "guest:***@" in quoting.format_message()
