"""The official AsyncAPI JSON Schemas, from the npm package `@asyncapi/specs`, cached outside git.

Nothing of the package is committed. The first use installs the pinned version with npm into
`$SCF_CACHE_DIR/asyncapi-specs` (default `<repo>/.cache/asyncapi-specs`, git-ignored); later runs reuse it.
Validation needs no network: every `$ref` of the schemas (`http://asyncapi.com/definitions/...`,
`http://asyncapi.com/bindings/...`) resolves in a `referencing` registry built from the package's own
files, and a reference outside it fails instead of being fetched.

Under CI (`CI=true`) a package that cannot be obtained fails the test; on a developer machine it skips
with the reason, like a missing real service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.support.services import IN_CI

SPECS_PACKAGE = "@asyncapi/specs"
SPECS_VERSION = "6.11.1"
#: the bundled AsyncAPI 2.6.0 document schema inside the package, and its `$id`
DOCUMENT_SCHEMA_PATH = "schemas/2.6.0.json"
DOCUMENT_SCHEMA_ID = "http://asyncapi.com/definitions/2.6.0/asyncapi.json"
AMQP_BINDING_VERSION = "0.2.0"
NPM_TIMEOUT_SECONDS = 180

REPO = Path(__file__).resolve().parents[2]


class SpecsUnavailable(Exception):
    """The schema package is not in the cache and could not be installed."""


def cache_dir() -> Path:
    base = os.environ.get("SCF_CACHE_DIR") or str(REPO / ".cache")
    return Path(base) / "asyncapi-specs"


def package_dir(cache: Path) -> Path:
    return cache / "node_modules" / "@asyncapi" / "specs"


def _installed_version(package: Path) -> str | None:
    try:
        manifest = json.loads((package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version if isinstance(version, str) else None


def _npm_install(into: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SpecsUnavailable(f"npm is not installed, so {SPECS_PACKAGE} cannot be fetched")
    command = [
        npm,
        "install",
        "--prefix",
        str(into),
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--ignore-scripts",
        "--loglevel=error",
        f"{SPECS_PACKAGE}@{SPECS_VERSION}",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise SpecsUnavailable(f"npm install {SPECS_PACKAGE} took over {NPM_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-600:]
        raise SpecsUnavailable(f"npm install {SPECS_PACKAGE}@{SPECS_VERSION} failed: {tail}")


def ensure_package(cache: Path | None = None) -> Path:
    """The package directory, installing the pinned version first if the cache lacks it."""
    cache = cache or cache_dir()
    package = package_dir(cache)
    if _installed_version(package) == SPECS_VERSION:
        return package
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Install beside the cache and move it in whole: a concurrent or interrupted run never sees half a
    # package, and a stale version is replaced.
    staging = cache.parent / f".{cache.name}-{uuid.uuid4().hex[:8]}"
    try:
        _npm_install(staging)
        if _installed_version(package_dir(staging)) != SPECS_VERSION:
            raise SpecsUnavailable(f"npm did not install {SPECS_PACKAGE}@{SPECS_VERSION}")
        if cache.exists() and _installed_version(package) != SPECS_VERSION:
            shutil.rmtree(cache, ignore_errors=True)
        try:
            staging.rename(cache)
        except OSError:
            if _installed_version(package) != SPECS_VERSION:  # not a concurrent run that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return package


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class AsyncApiSchemas:
    package: Path
    document_schema: dict[str, Any]
    registry: Registry[Any]

    def document_validator(self) -> Draft7Validator:
        """Validator of a whole AsyncAPI 2.6.0 document (the package's bundled `schemas/2.6.0.json`)."""
        return Draft7Validator(
            self.document_schema, registry=self.registry, format_checker=Draft7Validator.FORMAT_CHECKER
        )

    def amqp_binding_validator(self, kind: str) -> Draft7Validator:
        """Validator of an AMQP `channel`, `operation` or `message` binding object (0.2.0)."""
        schema = self.registry.contents(
            f"http://asyncapi.com/bindings/amqp/{AMQP_BINDING_VERSION}/{kind}.json"
        )
        return Draft7Validator(schema, registry=self.registry, format_checker=Draft7Validator.FORMAT_CHECKER)


def load_schemas(package: Path) -> AsyncApiSchemas:
    """Every schema file of the package with an `$id`, plus the bundled 2.6.0 schema, in one registry."""
    resources: list[tuple[str, Resource[Any]]] = []
    for path in sorted(
        [*package.joinpath("definitions").rglob("*.json"), *package.joinpath("bindings").rglob("*.json")]
    ):
        contents = _load(path)
        if isinstance(contents, dict) and isinstance(contents.get("$id"), str):
            resources.append(
                (contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7))
            )
    document = _load(package / DOCUMENT_SCHEMA_PATH)
    if not isinstance(document, dict) or document.get("$id") != DOCUMENT_SCHEMA_ID:
        raise SpecsUnavailable(f"{DOCUMENT_SCHEMA_PATH} of {SPECS_PACKAGE} is not the AsyncAPI 2.6.0 schema")
    resources.append((DOCUMENT_SCHEMA_ID, Resource.from_contents(document, default_specification=DRAFT7)))
    registry: Registry[Any] = Registry().with_resources(resources).crawl()
    return AsyncApiSchemas(package=package, document_schema=document, registry=registry)


def require_asyncapi_schemas() -> AsyncApiSchemas:
    """The schemas, or fail (under CI) / skip (locally) with the reason they are unavailable."""
    try:
        return load_schemas(ensure_package())
    except (SpecsUnavailable, OSError, ValueError) as exc:
        message = f"the AsyncAPI JSON Schemas ({SPECS_PACKAGE}@{SPECS_VERSION}) are unavailable: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI requires them)")
        pytest.skip(message)
