"""The PDF connector against the standard contract (it has no server: network cases skip).

Its connection test starts a real parser process on this machine.
"""

from __future__ import annotations

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import ConnectorContract


class TestPdfContract(ConnectorContract):
    no_network_reason = "the pdf connector parses what the request carries; it opens no connection"
    no_auth_reason = "PDF parsing has no credentials to refuse (a document password is a request parameter)"

    @pytest.fixture
    def connection(self) -> ServiceConnection:
        return ServiceConnection(service_type="pdf", service_name="contract_pdf")

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        return None

    @pytest.fixture
    def bad_credentials(self) -> ServiceConnection | None:
        return None
