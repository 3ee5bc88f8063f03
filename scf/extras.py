"""Which built-in connector types this install can run: each type's extra (pyproject.toml) brings its
driver modules, found here without importing them.

A worker started for every type (`--types all`) on an install without some extras would otherwise
consume requests for types it cannot run, and fail each one; a worker named for such a type would
start and fail at its first request. Both now know at start (scf/app/cli/roles.py).
"""

from __future__ import annotations

import importlib.util

DISTRIBUTION = "service-connector-factory"

#: Built-in type -> the modules its extra of the same name installs (rabbitmq needs none: aio-pika is
#: base). A plugin's type is not listed: its package brought its own dependencies.
DRIVERS: dict[str, tuple[str, ...]] = {
    "api": ("httpx", "httpcore", "certifi", "cryptography", "jwt", "botocore"),
    "csv": ("charset_normalizer", "httpx"),
    "elasticsearch": ("elasticsearch", "elastic_transport"),
    "minio": ("minio", "urllib3", "certifi"),
    "pdf": ("pdfplumber", "pdfminer"),
    "postgresql": ("asyncpg", "pglast"),
    "qdrant": ("qdrant_client", "grpc"),
    "redis": ("redis",),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: imports of it are refused
        return False


def missing_extra(service_type: str) -> str | None:
    """One line naming the extra when a built-in type's driver is not installed, else None."""
    absent = [m for m in DRIVERS.get(service_type, ()) if not _installed(m)]
    if not absent:
        return None
    return (
        f"service type {service_type!r} needs the '{service_type}' extra (module {absent[0]!r} is not "
        f"installed): pip install '{DISTRIBUTION}[{service_type}]'"
    )


def split_installed(service_types: list[str]) -> tuple[list[str], dict[str, str]]:
    """The types this install can run, and for each other one the line naming its extra."""
    served: list[str] = []
    missing: dict[str, str] = {}
    for service_type in service_types:
        problem = missing_extra(service_type)
        if problem is None:
            served.append(service_type)
        else:
            missing[service_type] = problem
    return served, missing
