"""KEDA's schemas, from the npm package `@kubernetes-models/keda`, cached outside git.

The package ships KEDA's CRD schemas as compiled validators (JavaScript generated from the CRDs' OpenAPI
schemas by ajv), not as JSON files, so the check runs them with node (`keda_validate.mjs`). The first use
installs the pinned version with npm into `$SCF_CACHE_DIR/kubernetes-models-keda` (default
`<repo>/.cache/...`, git-ignored), as `tests/support/asyncapi_schema.py` does; later runs reuse it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.deploy.tools import ROOT, run, tool, unavailable
from tests.support.asyncapi_schema import cache_dir as asyncapi_cache

PACKAGE = "@kubernetes-models/keda"
VERSION = "2.0.0"  # KEDA v2 APIs (keda.sh/v1alpha1), generated from kedacore/keda's Go types
NPM_TIMEOUT_SECONDS = 180
VALIDATOR = Path(__file__).with_name("keda_validate.mjs")


def cache_dir() -> Path:
    return asyncapi_cache().parent / "kubernetes-models-keda"


def package_dir(cache: Path) -> Path:
    return cache / "node_modules" / "@kubernetes-models" / "keda"


def _installed_version(package: Path) -> str | None:
    try:
        manifest = json.loads((package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version if isinstance(version, str) else None


def ensure_package() -> Path:
    """The installed package directory (installing the pinned version first), or skip/fail."""
    cache = cache_dir()
    package = package_dir(cache)
    if _installed_version(package) == VERSION:
        return package
    npm = tool("npm", "Debian package npm")
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = cache.parent / f".{cache.name}-{uuid.uuid4().hex[:8]}"
    try:
        command = [npm, "install", "--prefix", str(staging), "--no-save", "--no-audit", "--no-fund"]
        command += ["--no-package-lock", "--ignore-scripts", "--loglevel=error", f"{PACKAGE}@{VERSION}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            unavailable(f"npm install {PACKAGE} took over {NPM_TIMEOUT_SECONDS}s")
        if done.returncode != 0 or _installed_version(package_dir(staging)) != VERSION:
            unavailable(f"npm install {PACKAGE}@{VERSION} failed: {(done.stderr or done.stdout)[-600:]}")
        shutil.rmtree(cache, ignore_errors=True)
        try:
            staging.rename(cache)
        except OSError:
            if _installed_version(package) != VERSION:  # not a concurrent run that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return package


def validate_keda(documents: list[dict[str, Any]]) -> list[str]:
    """One line per invalid KEDA object (`Kind/name: errors`); unknown KEDA kinds are errors too."""
    package = ensure_package()
    node = tool("node", "Debian package nodejs")
    done = run([node, str(VALIDATOR), str(package)], cwd=ROOT, stdin=json.dumps(documents))
    if done.returncode != 0:
        raise AssertionError(f"the KEDA validator failed to run: {done.stderr[-2000:]}")
    problems = json.loads(done.stdout)
    assert isinstance(problems, list)
    return [str(p) for p in problems]
