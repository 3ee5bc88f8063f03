"""Contract tests talk to real services: fail under CI, skip locally, when one is missing."""

from __future__ import annotations

import pytest

from tests.support.services import require


@pytest.fixture(scope="session", autouse=True)
def postgres_is_up() -> None:
    require("PostgreSQL", "127.0.0.1", 5432)
