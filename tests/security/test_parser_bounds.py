"""Timing guards for the small parsers of untrusted text outside the redaction and JSON paths.

Each takes a worst-case 1 MB input and the same shape at 1 KB; linear work grows about 1,000x, quadratic
work about 1,000,000x. Both were quadratic before: a query ending a long run of blanks (its trailing `;`
stripped for paging: 40,000 spaces took 3.9 s) and a `Link` header of `<` without `>` (3.5 s at 40,000).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scf.connectors.api.paging import link_targets
from scf.connectors.postgresql.paging import strip_terminator
from tests.support.timing import best_of

KB = 1024
MB = 1024 * 1024
MAX_RATIO = 10_000
MAX_SECONDS = 3.0

CASES: dict[str, tuple[Callable[[int], str], Callable[[str], object]]] = {
    "query: blanks then a word": (lambda n: "SELECT 1" + " " * n + "x", strip_terminator),
    "query: blanks and semicolons at the end": (lambda n: "SELECT 1" + " ;" * (n // 2), strip_terminator),
    "query: semicolons then a word": (lambda n: "SELECT 1" + ";" * n + "x", strip_terminator),
    "link: opening brackets only": (lambda n: "<" * n, lambda v: link_targets([v])),
    "link: one bracket never closed": (lambda n: "<" + "a" * n, lambda v: link_targets([v])),
    "link: parameters without a comma": (
        lambda n: "<https://h/>" + "; rel" * (n // 5),
        lambda v: link_targets([v]),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parser_is_linear_on_hostile_text(case: str) -> None:
    make, use = CASES[case]
    small, large = make(KB), make(MB)
    small_time = max(best_of(5, lambda: use(small)), 1e-6)
    large_time = best_of(2, lambda: use(large))
    assert large_time < MAX_SECONDS, f"1 MB took {large_time:.2f}s"
    assert large_time / small_time < MAX_RATIO, f"{large_time / small_time:.0f}x from 1 KB to 1 MB"


def test_strip_terminator_strips_exactly_the_trailing_blanks_and_semicolons() -> None:
    assert strip_terminator("SELECT 1 ; ;\n\t") == "SELECT 1"
    assert strip_terminator("SELECT ';'") == "SELECT ';'"
    assert strip_terminator("SELECT 1\u00a0;") == "SELECT 1"  # Unicode blanks, as `\s` matched
    assert strip_terminator(" ;") == ""


def test_link_targets_still_reads_ordinary_headers() -> None:
    value = '<https://api/x?page=2>; rel="next", <https://api/x?page=9>; rel=last'
    assert link_targets([value]) == {"next": "https://api/x?page=2", "last": "https://api/x?page=9"}
