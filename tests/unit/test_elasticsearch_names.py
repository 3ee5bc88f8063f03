"""Elasticsearch name safety: index names, read targets and document ids are checked before any request."""

from __future__ import annotations

import pytest

from scf.connectors.elasticsearch.names import check_document_id, check_index, check_index_target
from scf.schemas.configs.elasticsearch import index_name_problem
from scf.schemas.errors import PermanentError


@pytest.mark.parametrize("name", ["logs", "logs-2024.01.01", "a_b+c", "my.index", "é-accents", "x" * 255])
def test_valid_index_names_pass(name: str) -> None:
    assert check_index(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("Logs", "lowercase"),
        ("-logs", "must not start"),
        ("_all", "must not start"),
        ("+logs", "must not start"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ('a"b', "'\"'"),
        ("a b", "' '"),
        ("a#b", "'#'"),
        ("a<b>", "'<'"),
        ("a|b", "'|'"),
        ("a?b", "'?'"),
        ("remote:logs", "':'"),
        ("tab\there", "'\\t'"),
        ("x" * 256, "255 bytes"),
        ("é" * 128, "255 bytes"),
    ],
)
def test_invalid_index_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(PermanentError) as caught:
        check_index(name)

    assert caught.value.code == "INVALID_IDENTIFIER"
    assert why in caught.value.message


@pytest.mark.parametrize("name", ["logs-*", "*", "a,b", "logs*,metrics"])
def test_writes_refuse_wildcards_and_comma_lists(name: str) -> None:
    with pytest.raises(PermanentError) as caught:
        check_index(name)

    assert caught.value.code == "INVALID_IDENTIFIER"
    assert "exactly one index" in caught.value.message


def test_a_non_string_index_is_refused() -> None:
    with pytest.raises(PermanentError):
        check_index(["logs"])


@pytest.mark.parametrize(
    ("target", "joined"),
    [
        ("logs", "logs"),
        ("logs-*", "logs-*"),
        ("*", "*"),
        ("a,b*", "a,b*"),
        (["a", "b-*"], "a,b-*"),
    ],
)
def test_reads_accept_names_patterns_and_lists(target: str | list[str], joined: str) -> None:
    assert check_index_target(target) == joined


@pytest.mark.parametrize(
    "target", ["-logs", "_all", "Logs*", "remote:logs", "a,,b", [], ["a", 1], ["a/b"], "*?"]
)
def test_reads_refuse_exclusions_remote_clusters_and_bad_names(target: object) -> None:
    with pytest.raises(PermanentError) as caught:
        check_index_target(target)

    assert caught.value.code == "INVALID_IDENTIFIER"


def test_reads_refuse_too_many_targets() -> None:
    with pytest.raises(PermanentError):
        check_index_target([f"i{n}" for n in range(65)])


def test_the_config_and_the_connector_share_one_rule() -> None:
    assert index_name_problem("ok") is None
    assert index_name_problem("Not-ok") == "must be lowercase"


@pytest.mark.parametrize(("value", "expected"), [("abc", "abc"), (42, "42"), ("a/b c", "a/b c")])
def test_document_ids_are_strings(value: object, expected: str) -> None:
    assert check_document_id(value) == expected


@pytest.mark.parametrize("value", ["", None, True, 1.5, "x" * 513, {"id": 1}])
def test_bad_document_ids_are_refused(value: object) -> None:
    with pytest.raises(PermanentError) as caught:
        check_document_id(value)

    assert caught.value.code == "INVALID_REQUEST"
