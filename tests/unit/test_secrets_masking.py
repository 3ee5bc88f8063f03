"""Masking URLs and redacting documents: the forms a password takes, and the bounds that keep it cheap."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from scf.dispatcher.dead_letter_store import MAX_PARSED_BODY, MAX_SHOWN_HEADER, describe, minimal
from scf.schemas.secret_fields import mask_dsn
from scf.schemas.secrets import (
    MASK,
    MAX_REDACT_NODES,
    MAX_SCANNED_CHARS,
    OVER_BUDGET,
    encodable,
    is_secret_key,
    mask_url,
    redact,
)

# The pattern mask_url used to be, the reference for what is masked (it was right, only slow), except
# that a password may now hold '@' (`u:p@ss@h`): it runs to the word's last '@' (`[^\s]*`, not `[^@\s]*`),
# so the part after an unencoded '@' no longer shows.
REFERENCE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^\s]*)@")


def reference(text: str) -> str:
    return REFERENCE.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:s3cret@db/x", f"postgresql://app:{MASK}@db/x"),
        ("redis://:s3cret@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        ("amqp://guest:s3cret@[::1]:5672/vh", f"amqp://guest:{MASK}@[::1]:5672/vh"),
        ("https://u%40x:p%3Aw%2Fd@host/p?q=1", f"https://u%40x:{MASK}@host/p?q=1"),
        ("s3+https://k:a/b:c@minio", f"s3+https://k:{MASK}@minio"),
        (
            "from amqp://a:one@h1 to redis://b:two@h2/1, done",
            f"from amqp://a:{MASK}@h1 to redis://b:{MASK}@h2/1, done",
        ),
        ("no url here, just text: a@b c", "no url here, just text: a@b c"),
        ("https://host/path@x", "https://host/path@x"),
        ("http://user@host", "http://user@host"),
        ("1://a:b@c", "1://a:b@c"),
        ("http://a:b c@d", "http://a:b c@d"),
        ("postgres://u:p@ss@h/db", f"postgres://u:{MASK}@h/db"),
        ("", ""),
    ],
)
def test_every_url_form_has_its_password_masked_and_nothing_else(text: str, masked: str) -> None:
    assert mask_url(text) == masked == reference(text)


def test_mask_url_agrees_with_the_old_pattern_on_tricky_mixtures() -> None:
    pieces = ["a", "1", ":", "/", "@", " ", "://", "x:y@", "Z+", "\t", "%"]
    texts = ["".join(pieces[(i * 7 + j * 3) % len(pieces)] for j in range(i % 23)) for i in range(4000)]
    texts += ["a://b://c:d@e", "x://y:z@@w://u:v@t", "h://u:p@h://u:p@h", "a:b://c:d@e"]
    for text in texts:
        assert mask_url(text) == reference(text), text


def test_a_long_text_is_cut_and_a_url_split_by_the_cut_is_dropped() -> None:
    secret = "TOPSECRET" * 10
    text = "x" * (MAX_SCANNED_CHARS - 40) + f" amqp://user:{secret}@host"
    cut = mask_url(text)
    assert "TOPSECRET" not in cut and "amqp://" not in cut
    assert cut.endswith(f"[truncated: {len(text)} characters]")
    one_word = "a://u:" + "p" * MAX_SCANNED_CHARS + "@h"
    assert "ppp" not in mask_url(one_word)
    assert mask_url("a" * 100, limit=10) == "a" * 10 + "[truncated: 100 characters]"


def test_mask_dsn_keeps_the_url_and_masks_only_the_password() -> None:
    assert mask_dsn("postgresql://app:pw@db:5432/x?sslmode=require") == (
        f"postgresql://app:{MASK}@db:5432/x?sslmode=require"
    )
    assert mask_dsn("postgresql://db/x") == "postgresql://db/x"
    assert mask_dsn("postgresql://app:pw@db:99999/x") == f"postgresql://app:{MASK}@db:99999/x"


def test_secret_key_names() -> None:
    assert all(is_secret_key(k) for k in ("password", "DB_PASSWD", "api-key", "Authorization", "x" * 2000))
    assert not any(is_secret_key(k) for k in ("host", "port", "username", "database"))


def test_redact_is_bounded_in_depth_width_and_characters() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    shown = json.dumps(redact(deep))
    assert "leaf" not in shown and MASK in shown

    wide = {f"k{i}": "v" for i in range(MAX_REDACT_NODES * 2)}
    redacted = redact(wide)
    assert OVER_BUDGET in redacted and len(redacted) <= MAX_REDACT_NODES + 1

    many = ["amqp://u:CANARY@h"] * 100 + ["y" * MAX_SCANNED_CHARS] * 40
    out = redact(many)
    assert out[-1] == OVER_BUDGET and "CANARY" not in json.dumps(out)


def test_redact_never_returns_unencodable_text() -> None:
    out = redact({"a\ud800": ["x\udfff", {"k": "amqp://u:p@h\ud800"}]})
    json.dumps(out, ensure_ascii=False).encode("utf-8")
    assert encodable("ok é") == "ok é" and encodable("\ud800") == "?"


def test_a_large_dead_letter_body_is_not_parsed_only_sized() -> None:
    body = json.dumps({"request": {"operation_id": "op_9", "data": "a" * MAX_PARSED_BODY}}).encode()
    letter = describe(body, {"h": "v" * (MAX_SHOWN_HEADER * 10)}, "operation.execute", "m", 1.0)
    assert letter.body == {"truncated": True, "bytes": len(body)}
    assert letter.operation_id == "m"  # not read from a body too large to parse
    assert len(letter.headers["h"]) < MAX_SHOWN_HEADER + 64
    letter.model_dump_json()


def test_a_non_json_body_is_shown_masked_and_lone_surrogates_are_replaced() -> None:
    raw = describe(b"see amqp://u:hunter2@h \xff", {}, None, None, 1.0)
    assert "hunter2" not in str(raw.body)
    odd = describe(b'{"request": {"operation_id": "op\\ud800", "data": "\\udfff"}}', {}, None, None, 1.0)
    assert odd.operation_id == "op?"
    odd.model_dump_json()


def test_a_minimal_letter_carries_only_safe_facts() -> None:
    letter = minimal(b"x" * 10, "m\ud800", 5.0, "ValueError")
    assert letter.body == {"truncated": True, "bytes": 10} and letter.operation_id == "m?"
    letter.model_dump_json()


def test_dead_letter_headers_show_only_the_fleets_and_brokers_values() -> None:
    headers = {"X-Auth": "tok-1", "Signature": "sig-2", "x-scf-attempts": 3, "x-first-death-queue": "q"}
    shown = describe(b"{}", headers, None, None, 1.0).headers
    assert shown == {"X-Auth": MASK, "Signature": MASK, "x-scf-attempts": 3, "x-first-death-queue": "q"}


class _Text(str):
    """A str subclass: not the exact type the fast path trusts."""


def test_remembered_keys_and_the_plain_string_fast_path_mask_the_same_as_the_first_time() -> None:
    """Key verdicts are remembered and plain ASCII strings skip the URL scan: neither may let a secret
    through on a repeat, under a long key, in a str subclass, or in a value that looks like a URL."""
    line = {
        "event": "audit",
        "password": "hunter2",
        "Api-Key": "k" * 10,
        "claimed_caller": "postgresql://bob:s3cret@db/x",
        "outcome": "success",
        "service_name": _Text("http://u:pw@h/"),
        "nested": {"token": "t0k", "note": ["ftp://a:b@c", "plain", 3, None, 1.5, True]},
        "x" * 200 + "secret": "long key",
        "ex://u:p4ss@h": "key with a URL",
        "ünïcode": "postgres://u:p\udc80w@h/db",
    }
    for _ in range(3):  # the first call fills the key cache, the others read it
        shown = redact(dict(line))
        text = json.dumps(shown, ensure_ascii=False)
        for secret in ("hunter2", "k" * 10, "s3cret", "pw@", "t0k", "a:b@", "long key", "p4ss", "p\udc80w"):
            assert secret not in text, secret
        assert shown["event"] == "audit" and shown["outcome"] == "success"
        assert shown["nested"]["note"][1:] == ["plain", 3, None, 1.5, True]
        assert shown["password"] == MASK and shown["x" * 200 + "secret"] == MASK
        text.encode("utf-8")  # every string came back encodable
