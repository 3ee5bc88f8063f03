"""The Qdrant connector against the standard contract, in local mode (embedded, in a temporary folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import ConnectorContract


class TestQdrantContract(ConnectorContract):
    no_auth_reason = (
        "Qdrant's local mode has no authentication to refuse; a real server with an api_key answers "
        "401/403, which the error table maps to security (tests/unit/test_qdrant_errors.py)"
    )

    @pytest.fixture
    def connection(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceConnection:
        # local mode stores under <SCF_DATA_DIR>/qdrant/<service_name>, here the test's own folder
        monkeypatch.setenv("SCF_DATA_DIR", str(tmp_path))
        return ServiceConnection.model_validate(
            {
                "service_type": "qdrant",
                "service_name": "contract_qdrant",
                "custom_config": {"path": "store"},
            }
        )

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        return ServiceConnection.model_validate(
            {
                "service_type": "qdrant",
                "service_name": "contract_qdrant_nowhere",
                "connection_timeout": 2,
                "retry_attempts": 0,
                "custom_config": {"url": "http://127.0.0.1:1"},
            }
        )

    @pytest.fixture
    def bad_credentials(self) -> ServiceConnection | None:
        return None
