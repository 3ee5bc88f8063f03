"""The slim install: what a service that only sends requests gets from `pip install` of the project.

Built as a wheel, installed (non-editable) into fresh virtualenvs on Python 3.12 and 3.13, pinned by
requirements/client.lock: the clients, the models and `scf --version` work, and no database driver or
server framework came along. The fleet's roles and connectors are extras.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import IN_CI

ROOT = Path(__file__).resolve().parents[2]
PYENV_ROOT = Path.home() / ".pyenv"

#: What the slim install must never pull: drivers, servers and the connectors' heavy libraries.
HEAVY = {
    "asyncpg",
    "redis",
    "hiredis",
    "elasticsearch",
    "qdrant-client",
    "grpcio",
    "minio",
    "pdfplumber",
    "pypdfium2",
    "pillow",
    "psycopg",
    "psycopg2",
    "pglast",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "prometheus-client",
    "cryptography",
}

pytestmark = pytest.mark.integration


def _interpreter(minor: str) -> Path | None:
    found = sorted(PYENV_ROOT.glob(f"versions/{minor}.*/bin/python"))
    return found[-1] if found else None


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, ROOT)
    (built,) = out.glob("service_connector_factory-*.whl")
    return built


@pytest.mark.parametrize("minor", ["3.12", "3.13"])
def test_the_slim_client_installs_without_drivers(minor: str, wheel: Path, tmp_path: Path) -> None:
    python = _interpreter(minor)
    if python is None:
        message = f"Python {minor} is not installed (pyenv install {minor})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    venv = tmp_path / "venv"
    _run(python, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    _run(pip, "install", "--quiet", "-c", ROOT / "requirements" / "client.lock", wheel, cwd=tmp_path)

    installed = {
        line.split("==")[0].lower()
        for line in _run(pip, "list", "--format=freeze").splitlines()
        if "==" in line
    }
    assert "service-connector-factory" in installed
    assert not installed & HEAVY, f"the slim install pulled {sorted(installed & HEAVY)}"

    # The caller's surface imports, from the installed wheel (cwd is not the checkout).
    probe = (
        "import scf, scf.schemas\n"
        "from scf import FleetClient, OperationRequest\n"
        "from scf.fleet.client import FleetClient as F\n"
        "assert F is FleetClient\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('asyncpg') is None\n"
        "print(scf.__version__)\n"
    )
    version = _run(venv / "bin" / "python", "-c", probe, cwd=tmp_path).strip()
    assert (ROOT / "scf" / "py.typed").exists()
    site = next((venv / "lib").glob("python*/site-packages"))
    assert (site / "scf" / "py.typed").exists(), "py.typed is not shipped"
    cli = _run(venv / "bin" / "scf", "--version", cwd=tmp_path)
    assert version in cli, cli

    # The client commands work without the fleet's extras (one line, no ImportError); a fleet role says
    # which extra it needs.
    env = {"PATH": "/usr/bin:/bin", "SCF_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
    listed = subprocess.run(
        [venv / "bin" / "scf", "connector", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 3 and "cannot reach the broker" in listed.stderr, listed
    up = subprocess.run([venv / "bin" / "scf", "up"], capture_output=True, text=True, env=env, timeout=60)
    assert up.returncode == 2 and "service-connector-factory[all]" in up.stderr, up
    assert "Traceback" not in listed.stderr + up.stderr
