"""docs/operations.md and CHANGELOG.md's alias list are what the operation tables say, to the letter."""

from __future__ import annotations

from pathlib import Path

from scf.app.reference import ALIASES_END, ALIASES_START, deprecated_aliases, operations_page, with_aliases

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "out of date: run `python -m scf.app.reference` and commit the result"


def test_the_operations_page_is_generated_from_the_tables() -> None:
    assert (ROOT / "docs" / "operations.md").read_text() == operations_page(), REGENERATE


def test_the_changelog_lists_every_deprecated_alias() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog == with_aliases(changelog), REGENERATE
    assert deprecated_aliases().count("\n") > 50  # every connector kept its old field places


def test_the_alias_block_is_replaced_not_appended() -> None:
    text = f"intro\n{ALIASES_START}\n- stale line\n{ALIASES_END}\noutro\n"
    rewritten = with_aliases(text)
    assert "stale line" not in rewritten
    assert rewritten.startswith("intro\n") and rewritten.endswith(f"{ALIASES_END}\noutro\n")
    assert with_aliases(rewritten) == rewritten


def test_scf_types_lists_every_operation_with_its_traits() -> None:
    from click.testing import CliRunner

    from scf.app.cli import main

    listing = CliRunner().invoke(main, ["types", "minio"])
    unknown = CliRunner().invoke(main, ["types", "oracle"])

    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0] == "minio"
    (listed,) = [line for line in lines if line.split()[0] == "list_objects"]
    assert "[reads, idempotent, pages]" in listed and "page_size?" in listed
    assert unknown.exit_code == 2 and "no connector type 'oracle'" in unknown.output
