"""Object-key safety for the MinIO connector: the refusal corpus, prefix confinement, the config's prefix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scf.connectors.minio.names import ObjectNames
from scf.schemas.configs.minio import MAX_KEY_BYTES, MinioConfig, check_key, check_prefix, key_problem
from scf.schemas.errors import ErrorCode, PermanentError

REFUSED = {
    "parent segment": "../x",
    "parent segment inside": "a/../b",
    "parent segment at the end": "a/..",
    "current segment": "./a",
    "current segment inside": "a/./b",
    "lone dot": ".",
    "lone dot dot": "..",
    "absolute": "/abs",
    "lone slash": "/",
    "empty segment": "a//b",
    "backslash": "a\\b",
    "backslash traversal": "..\\x",
    "encoded dots": "a%2e%2e/b",
    "encoded dots upper case": "%2E%2E/x",
    "encoded slash": "%2F",
    "encoded slash lower case": "a%2fb",
    "encoded backslash": "a%5cb",
    "double encoding": "a%252e%252e/b",
    "encoded NUL": "a%00b",
    "encoded newline": "a%0Ab",
    "NUL": "a\x00b",
    "newline": "a\nb",
    "carriage return": "a\rb",
    "tab": "a\tb",
    "escape": "a\x1bb",
    "delete": "a\x7fb",
    "C1 control": "a\x85b",
    "right-to-left override": "invoice\u202etxt.exe",
    "fullwidth dots": "\uff0e\uff0e/x",
    "fullwidth solidus": "a\uff0f..\uff0fb",
    "fullwidth reverse solidus": "a\uff3cb",
    "two dot leader": "\u2025/x",
    "empty": "",
    "too long": "k" * (MAX_KEY_BYTES + 1),
    "too long in bytes": "é" * (MAX_KEY_BYTES // 2 + 1),
    "lone surrogate": "a\ud800b",
}

ACCEPTED = [
    "report.csv",
    "a/b/c.txt",
    "folder/",
    "dots.in.name/..hidden/file..txt",
    "...",
    "naïve/日本語/файл.csv",
    "emoji-👩‍💻.json",
    "100% done.txt",
    "a%20b",
    "a%zz",
    "k" * MAX_KEY_BYTES,
    "with space/and-dash_and~tilde",
]


@pytest.mark.parametrize("key", REFUSED.values(), ids=REFUSED.keys())
def test_unsafe_keys_are_refused_as_invalid_identifiers(key: str) -> None:
    with pytest.raises(PermanentError) as caught:
        check_key(key)

    assert caught.value.code == ErrorCode.INVALID_IDENTIFIER
    assert not caught.value.retryable


@pytest.mark.parametrize("key", ACCEPTED)
def test_ordinary_keys_including_unicode_are_accepted(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", [None, 7, b"bytes", ["a"]])
def test_a_key_that_is_not_a_string_is_refused(key: object) -> None:
    assert key_problem(key) == "must be a string"


def test_the_refusal_names_the_field_and_escapes_the_key() -> None:
    with pytest.raises(PermanentError) as caught:
        check_key("a\nb", "parameters.keys[2]")

    assert caught.value.message.startswith("parameters.keys[2] 'a\\nb' ")
    assert "\n" not in caught.value.message


def test_a_long_refused_key_is_shown_shortened() -> None:
    with pytest.raises(PermanentError) as caught:
        check_key("x" * 2000)

    assert len(caught.value.message) < 200


def test_an_empty_key_is_allowed_only_where_it_means_everything() -> None:
    assert key_problem("", allow_empty=True) is None
    assert key_problem("") == "must not be empty"


def test_full_names_are_always_inside_the_prefix() -> None:
    names = ObjectNames("tenant-a/")

    assert names.full("x/y.csv") == "tenant-a/x/y.csv"
    assert names.relative("tenant-a/x/y.csv") == "x/y.csv"
    assert names.listing("") == "tenant-a/"
    assert names.listing("x/") == "tenant-a/x/"
    with pytest.raises(PermanentError):
        names.full("../tenant-b/secret.csv")
    with pytest.raises(PermanentError):
        names.listing("../")


def test_the_prefix_counts_toward_the_length_limit() -> None:
    names = ObjectNames("p/" * 10)

    with pytest.raises(PermanentError) as caught:
        names.full("k" * (MAX_KEY_BYTES - 5))

    assert caught.value.code == ErrorCode.INVALID_IDENTIFIER
    assert "prefix" in caught.value.message


def test_a_name_the_store_returns_outside_the_prefix_is_never_shown() -> None:
    with pytest.raises(PermanentError):
        ObjectNames("mine/").relative("theirs/file")


def test_the_configured_prefix_becomes_a_folder() -> None:
    assert check_prefix("") == ""
    assert check_prefix("raw") == "raw/"
    assert check_prefix("raw/2024/") == "raw/2024/"


@pytest.mark.parametrize("prefix", ["../up", "/abs", "a\\b", "a%2fb", "a//b"])
def test_an_unsafe_configured_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MinioConfig.model_validate({"bucket_name": "data-lake", "prefix": prefix})

    assert "prefix" in str(caught.value)
