"""`SCF_REDIS_SENTINELS` is parsed strictly; a typo stops a process at start instead of a silent default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scf.fleet.redis_client import sentinel_addresses
from scf.fleet.settings import Settings


def test_sentinels_are_host_port_pairs_with_sentinels_default_port() -> None:
    assert sentinel_addresses("") == []
    assert sentinel_addresses("s1:26380, s2 ,[::1]:26381,[fe80::1]") == [
        ("s1", 26380),
        ("s2", 26379),
        ("::1", 26381),
        ("fe80::1", 26379),
    ]


@pytest.mark.parametrize(
    "value",
    [
        "s1:",
        "s1:http",
        "s1:70000",
        ":26379",
        "[::1]:x",
        ",".join(["s:1"] * 17),
        "s1:\u0662\u0666\u0663\u0667\u0669",  # Arabic-Indic digits: str.isdigit() and int() take them
        "s1:000000000026379",  # 26379 to int(), but no port is written so
    ],
)
def test_a_malformed_sentinel_list_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        sentinel_addresses(value)
    monkeypatch.setenv("SCF_REDIS_SENTINELS", value)
    with pytest.raises(ValidationError):
        Settings()
