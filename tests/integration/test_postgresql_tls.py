"""The PostgreSQL connector over TLS, against private PostgreSQL servers with a CA made for the module.

`require` must really encrypt; `verify-ca`/`verify-full` must trust exactly `ssl_root_cert` (and, for
verify-full, the host name). A certificate that does not verify is a configuration problem: retrying
cannot fix it, so it must never come back as a transient error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from scf.connectors.postgresql import PostgreSQLOutputConnector
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCategory, ErrorCode
from scf.schemas.operation import OperationRequest
from tests.support.postgres import Admin, admin, free_port, pg_connection
from tests.support.private_services import CertificateAuthority, PrivatePostgres

pytestmark = pytest.mark.integration

__all__ = ["admin"]  # fixture used by name below

SESSION_IS_TLS = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
DROP_CONNECTOR_SESSIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'scf:%'"
)
NOT_RETRYABLE = {ErrorCategory.CONFIGURATION, ErrorCategory.SECURITY}


@pytest.fixture(scope="module")
def tls_server() -> Iterator[PrivatePostgres]:
    """TLS with a certificate for 127.0.0.1 and localhost, signed by the server's own CA (`ca_file`)."""
    with PrivatePostgres(ssl=True) as server:
        yield server


@pytest.fixture(scope="module")
def other_host_server() -> Iterator[PrivatePostgres]:
    """TLS with a valid certificate, but for `db.example` only."""
    with PrivatePostgres(ssl=True, ssl_hosts=("db.example",)) as server:
        yield server


@pytest.fixture(scope="module")
def unrelated_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("unrelated-ca")
    return CertificateAuthority.create("unrelated CA").write_pem(folder / "ca.crt")


def connector_for(
    server: PrivatePostgres, host: str = "127.0.0.1", **fields: Any
) -> PostgreSQLOutputConnector:
    return PostgreSQLOutputConnector(
        pg_connection(host=host, port=server.port, database=server.database, **fields)
    )


async def session_is_tls(pg: PostgreSQLOutputConnector) -> bool:
    try:
        outcome = await pg.execute(OperationRequest(operation="query", parameters={"query": SESSION_IS_TLS}))
    finally:
        await pg.close()
    rows = outcome.result_data["rows"]
    return bool(rows[0]["ssl"])


async def refused(pg: PostgreSQLOutputConnector) -> ConnectorError:
    try:
        with pytest.raises(ConnectorError) as caught:
            await pg.execute(OperationRequest(operation="query", parameters={"query": "SELECT 1"}))
    finally:
        await pg.close()
    return caught.value


# --- encrypted sessions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"custom_config": {"ssl_mode": "require"}}, {"ssl_enabled": True}],
    ids=["ssl_mode-require", "ssl_enabled"],
)
async def test_require_runs_the_session_over_tls(tls_server: PrivatePostgres, fields: dict[str, Any]) -> None:
    assert await session_is_tls(connector_for(tls_server, **fields))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_verify_full_with_the_servers_ca_connects_by_ip_and_by_name(
    tls_server: PrivatePostgres, host: str
) -> None:
    custom = {"ssl_mode": "verify-full", "ssl_root_cert": str(tls_server.ca_file)}
    assert await session_is_tls(connector_for(tls_server, host=host, custom_config=custom))


async def test_verify_ca_checks_the_chain_but_not_the_host_name(other_host_server: PrivatePostgres) -> None:
    custom = {"ssl_mode": "verify-ca", "ssl_root_cert": str(other_host_server.ca_file)}
    assert await session_is_tls(connector_for(other_host_server, custom_config=custom))


# --- certificates that must not be trusted -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
async def test_a_server_certificate_from_an_unknown_ca_is_refused_without_retry(
    tls_server: PrivatePostgres, unrelated_ca_file: Path, mode: str
) -> None:
    custom = {"ssl_mode": mode, "ssl_root_cert": str(unrelated_ca_file)}
    error = await refused(connector_for(tls_server, custom_config=custom))
    assert error.category in NOT_RETRYABLE, error.detail
    assert not error.retryable


async def test_verify_full_refuses_a_certificate_for_another_host_name_without_retry(
    other_host_server: PrivatePostgres,
) -> None:
    custom = {"ssl_mode": "verify-full", "ssl_root_cert": str(other_host_server.ca_file)}
    error = await refused(connector_for(other_host_server, custom_config=custom))
    assert error.category in NOT_RETRYABLE, error.detail
    assert not error.retryable
    assert "SSLCertVerificationError" in (error.detail or "")


async def test_a_certificate_that_stops_verifying_after_the_pool_opened_is_not_retryable() -> None:
    with PrivatePostgres(ssl=True) as server:
        custom = {"ssl_mode": "verify-full", "ssl_root_cert": str(server.ca_file)}
        pg = connector_for(server, custom_config=custom)
        try:
            await pg.execute(OperationRequest(operation="query", parameters={"query": "SELECT 1"}))
            server.reissue_certificate(ca=CertificateAuthority.create("rotated without telling the client"))
            admin_conn = await asyncpg.connect(host=str(server.dir), port=server.port, user=server.user)
            try:  # drop the pooled session so the next operation must make a new TLS connection
                await admin_conn.execute(DROP_CONNECTOR_SESSIONS)
            finally:
                await admin_conn.close()
            errors = []
            for _ in range(3):  # the first may be the terminated session itself (rightly transient)
                with pytest.raises(ConnectorError) as caught:
                    await pg.execute(OperationRequest(operation="query", parameters={"query": "SELECT 1"}))
                errors.append(caught.value)
        finally:
            await pg.close()
    unverified = [e for e in errors if "SSLCertVerificationError" in (e.detail or "")]
    assert unverified, [e.detail for e in errors]
    assert unverified[-1].category in NOT_RETRYABLE
    assert not unverified[-1].retryable


# --- configuration mistakes ----------------------------------------------------------------------------


async def test_a_missing_root_cert_file_is_invalid_config_before_any_connection(tmp_path: Path) -> None:
    custom = {"ssl_mode": "verify-full", "ssl_root_cert": str(tmp_path / "no-such-ca.pem")}
    with pytest.raises(ConfigurationError) as caught:  # nothing listens there: a connect would be transient
        PostgreSQLOutputConnector(pg_connection(port=free_port(), custom_config=custom))
    assert caught.value.code == ErrorCode.INVALID_CONFIG
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "fields",
    [{"custom_config": {"ssl_mode": "require"}}, {"ssl_enabled": True}],
    ids=["ssl_mode-require", "ssl_enabled"],
)
async def test_require_against_the_shared_server_without_tls_is_a_configuration_error(
    admin: Admin, fields: dict[str, Any]
) -> None:
    if await admin.fetchval("SHOW ssl") == "on":
        pytest.skip("the shared server accepts TLS")
    error = await refused(PostgreSQLOutputConnector(pg_connection(**fields)))
    assert (error.category, error.code) == (ErrorCategory.CONFIGURATION, ErrorCode.INVALID_CONFIG)
    assert not error.retryable
