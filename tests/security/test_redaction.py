"""Timing guards for redaction: every path that scans untrusted text stays linear and bounded.

Each guard runs a worst-case 1 MB input and the same shape at 1 KB (the fastest of several runs), and
requires the large case under an absolute bound and under a ratio of the small one. Linear work
measures about 1,000x (the sizes' ratio) and quadratic work about 1,000,000x (the old URL pattern took
2.3 s on 40,000 letters), so a 10,000x bound fails the one and leaves a shared machine room for noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scf.dispatcher.dead_letter_store import describe
from scf.schemas.secrets import MASK, mask_url, redact
from tests.support.timing import best_of

KB = 1024
MB = 1024 * 1024
MAX_RATIO = 10_000
MAX_SECONDS = 3.0


def guard(make: Callable[[int], Any], use: Callable[[Any], Any]) -> tuple[float, float]:
    small, large = make(KB), make(MB)
    small_time = max(best_of(5, lambda: use(small)), 1e-6)
    large_time = best_of(2, lambda: use(large))
    assert large_time < MAX_SECONDS, f"1 MB took {large_time:.2f}s"
    assert large_time / small_time < MAX_RATIO, f"1 MB {large_time:.4f}s vs 1 KB {small_time:.6f}s"
    return small_time, large_time


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


TEXTS: dict[str, Callable[[int], str]] = {
    "letter run": lambda n: "a" * n,
    "letter run then scheme": lambda n: "a" * (n - 3) + "://",
    "many schemes": lambda n: repeat("a://", n),
    "many schemes with users": lambda n: repeat("ab://c:", n),
    "many at signs": lambda n: repeat("@", n),
    "userinfo without end": lambda n: "h://u:" + repeat("p/", n),
    "digits before scheme": lambda n: repeat("1" * 50 + "://", n),
    "many real urls": lambda n: repeat("amqp://u:pw@h ", n),
    "whitespace runs": lambda n: repeat(" \t", n),
}


@pytest.mark.parametrize("shape", sorted(TEXTS))
def test_mask_url_is_linear_on_hostile_text(shape: str) -> None:
    guard(TEXTS[shape], mask_url)


@pytest.mark.parametrize("shape", sorted(TEXTS))
def test_the_scan_itself_is_linear_without_the_cap(shape: str) -> None:
    guard(TEXTS[shape], lambda text: mask_url(text, limit=4 * MB))


def nested(n: int) -> Any:
    doc: Any = "a://u:p@h"
    for _ in range(n // 2):
        doc = [doc]
    return doc


DOCUMENTS: dict[str, Callable[[int], Any]] = {
    "one long string": lambda n: {"data": "a" * n},
    "wide dict": lambda n: {f"k{i}": "a://b:" for i in range(n // 8)},
    "long list": lambda n: ["x"] * (n // 4),
    "deep nesting": nested,
    "long keys": lambda n: {("password" + "a" * 2000 + str(i)): "v" for i in range(max(1, n // 2000))},
}


@pytest.mark.parametrize("shape", sorted(DOCUMENTS))
def test_redact_is_bounded_on_hostile_documents(shape: str) -> None:
    guard(DOCUMENTS[shape], redact)


def body(n: int, shape: str) -> bytes:
    if shape == "deep":
        return b"[" * n
    if shape == "not json":
        return repeat("a://b:", n).encode()
    text = json.dumps({"request": {"service_name": "s", "data": repeat("ab://c:", n)}})
    return text.encode()


@pytest.mark.parametrize("shape", ["letters", "deep", "not json"])
def test_describe_is_bounded_on_hostile_dead_letters(shape: str) -> None:
    headers = {"x-hostile": "a" * 100_000, "authorization": "Bearer CANARY"}
    guard(
        lambda n: body(n, shape),
        lambda raw: describe(raw, headers, "operation.execute", "m", 1.0).model_dump_json(),
    )


def test_masking_a_hostile_text_never_returns_the_password() -> None:
    text = repeat("a", MB) + " amqp://user:CANARY@host " + repeat("b://c:", MB)
    assert "CANARY" not in mask_url(text, limit=4 * MB)
    assert f"amqp://user:{MASK}@host" in mask_url(text, limit=4 * MB)
    assert "CANARY" not in mask_url(text)
