"""The project's documentation links only to files in the project, and cites nothing a clone lacks.

Every relative link in README.md, CHANGELOG.md and docs/*.md resolves to a file (or folder) inside the
repository, and an anchor (`page.md#section`) names a heading of that page. No text in the README, the
docs or the `scf` package cites the design notes kept outside the repository (`../shared/`,
`DESIGN.md`, `STYLE.md`, the specification's file): docs/architecture.md is the project's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    page
    for page in (ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md"))
    if page.exists()
)

#: What no file of the project may cite: places outside the repository.
OUTSIDE = ("../shared", "DESIGN.md", "STYLE.md", "service-connector-factory.md")

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
#: `[text](target "title")` and `![alt](target)`; the target has no spaces and no unbalanced parens.
_INLINE = re.compile(r"!?\[(?:[^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
#: `[label]: target` reference definitions.
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...
#: A code span naming a path of the project (`scf/fleet/client.py`, `tests/faults/`): up to a space or ':'.
_PATH_SPAN = re.compile(r"`((?:scf|tests|bench|docs|scripts|deploy|examples)/[^`\s:]*)")


def prose(text: str) -> str:
    """The page without fenced code blocks and code spans (links there are examples, not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    return [*_INLINE.findall(body), *_REFERENCE.findall(body)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken(page: Path, target: str) -> str | None:
    """Why a link of `page` does not resolve inside the repository (None: it does)."""
    if _EXTERNAL.match(target):
        return None
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and resolved.is_file() and anchor not in anchors(resolved):
        return f"no heading #{anchor} in {resolved.relative_to(ROOT)}"
    return None


def cited_outside(path: Path) -> Iterator[str]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for name in OUTSIDE:
            if name in line:
                yield f"{path.relative_to(ROOT)}:{number} cites {name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    failures = [
        f"{page.relative_to(ROOT)}: ({target}) {why}"
        for target in links(page.read_text(encoding="utf-8"))
        if (why := broken(page, target)) is not None
    ]

    assert failures == []


def named_paths(text: str) -> list[str]:
    """Paths of the project a page names in code spans; patterns (`scf/connectors/<type>/`) left out."""
    return [path for path in _PATH_SPAN.findall(_FENCE.sub("", text)) if not set(path) & set("<>*{}[]")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_page_names_exists(page: Path) -> None:
    """A module moved or renamed leaves no stale `scf/...` path in the docs."""
    missing = [path for path in named_paths(page.read_text(encoding="utf-8")) if not (ROOT / path).exists()]

    assert missing == []


def test_nothing_cites_the_notes_outside_the_repository() -> None:
    files = [*PAGES, *(ROOT / "scf").rglob("*.py"), *(ROOT / "scf").rglob("*.md")]
    assert [hit for path in files for hit in cited_outside(path)] == []


def test_the_readme_links_every_docs_page() -> None:
    readme = set(links((ROOT / "README.md").read_text(encoding="utf-8")))
    linked = {target.partition("#")[0] for target in readme}
    missing = [
        f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md") if f"docs/{page.name}" not in linked
    ]

    assert missing == []


# --- the checker itself ---------------------------------------------------------------------------------


def test_links_are_found_outside_code_only() -> None:
    text = "See [a](a.md) and ![b](img/b.png).\n\n```\n[c](c.md)\n```\nAnd `[d](d.md)`.\n[e]: e.md\n"
    assert links(text) == ["a.md", "img/b.png", "e.md"]


def test_named_paths_skip_patterns_and_stop_at_a_colon() -> None:
    text = (
        "`scf/fleet/disposition.py: decide`, `scf/connectors/<type>/errors.py`, `scf.ops.<type>`, `tests/x/`"
    )
    assert named_paths(text) == ["scf/fleet/disposition.py", "tests/x/"]


def test_a_missing_file_an_escape_and_a_wrong_anchor_are_caught() -> None:
    readme = ROOT / "README.md"
    assert broken(readme, "docs/resilience.md") is None
    assert broken(readme, "https://example.com/x") is None
    assert broken(readme, "docs/nowhere.md") == "no such file"
    assert broken(readme, "../shared/DESIGN.md") == "points outside the repository"
    assert broken(readme, "docs/resilience.md#no-such-heading") is not None


def test_slugs_follow_github() -> None:
    assert slug("Two routes to a worker: the dispatcher and the fast path") == (
        "two-routes-to-a-worker-the-dispatcher-and-the-fast-path"
    )
    assert slug("Request bodies ([scf/gateway/bodies.py](../scf/gateway/bodies.py))") == (
        "request-bodies-scfgatewaybodiespy"
    )
    assert slug("Unreleased — structure") == "unreleased--structure"
