"""The validators the deploy checks run, found on PATH or in the venv: missing locally skips the test with
the reason; under CI (`CI=true`) a missing one fails it (scripts/lib.sh installs kubectl, the dev extra the
Python ones, Debian's npm the KEDA package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.services import IN_CI

ROOT = Path(__file__).resolve().parents[2]


def unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(message + " (CI requires it)")
    pytest.skip(message)


def tool(name: str, hint: str) -> str:
    """The path of executable `name`: the venv's own first, then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed ({hint})")
    return found


def run(
    command: list[str], *, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300, check=False
    )
