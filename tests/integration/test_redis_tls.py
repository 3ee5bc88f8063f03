"""The Redis connector over TLS: a throwaway `redis-server` with a TLS port and a test CA made here.

The server runs on a free loopback port without persistence and stops with the module. A certificate
the connector cannot verify is a configuration error; `ssl_verify: false` is the explicit way around.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scf.connectors.redis import RedisConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError
from tests.support.redis_connectors import ok
from tests.support.services import IN_CI, reachable

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca_file: Path


def _key_and_name(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    return ec.generate_private_key(ec.SECP256R1()), x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _write_pem(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def make_certificates(folder: Path) -> None:
    """A CA (`ca.crt`) and a server certificate for 127.0.0.1 signed by it (`server.crt`/`.key`)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca_name = _key_and_name("scf test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key, server_name = _key_and_name("localhost")
    server = (
        x509.CertificateBuilder()
        .subject_name(server_name)
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_pem(folder / "ca", ca_key, ca)
    _write_pem(folder / "server", server_key, server)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI requires it)")
        pytest.skip("redis-server is not installed")
    folder = tmp_path_factory.mktemp("redis-tls")
    make_certificates(folder)
    port = free_port()
    # fmt: off
    command = [
        binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
        "--tls-cert-file", str(folder / "server.crt"), "--tls-key-file", str(folder / "server.key"),
        "--tls-ca-cert-file", str(folder / "ca.crt"), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", "--dir", str(folder),
    ]
    # fmt: on
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", port, timeout=0.2):
            assert process.poll() is None, "redis-server with TLS did not start"
            assert time.monotonic() < deadline, "redis-server with TLS did not open its port"
            time.sleep(0.05)
        yield TlsServer(port, folder / "ca.crt")
    finally:
        process.terminate()
        process.wait(timeout=10)


def tls_connection(**fields: Any) -> ServiceConnection:
    body = {
        "service_type": "redis",
        "service_name": "tls_cache",
        "connection_timeout": 5,
        "retry_attempts": 0,
    }
    return ServiceConnection.model_validate({**body, **fields})


async def test_ssl_enabled_with_the_servers_ca_connects_and_works(tls_server: TlsServer) -> None:
    connector = RedisConnector(
        tls_connection(
            host="127.0.0.1",
            port=tls_server.port,
            ssl_enabled=True,
            custom_config={"ssl_ca_file": str(tls_server.ca_file)},
        )
    )
    try:
        checked = await connector.check()
        await ok(connector, "set", {"key": "k", "value": "over tls"})
        got = await ok(connector, "get", {"key": "k"})
    finally:
        await connector.close()

    assert checked.status == "success", checked.error
    assert got == {"value": "over tls", "exists": True}


async def test_a_rediss_url_means_tls(tls_server: TlsServer) -> None:
    custom = {"url": f"rediss://127.0.0.1:{tls_server.port}/2", "ssl_ca_file": str(tls_server.ca_file)}
    connector = RedisConnector(tls_connection(custom_config=custom))
    try:
        checked = await connector.check()
    finally:
        await connector.close()

    assert checked.status == "success", checked.error


async def test_a_certificate_that_cannot_be_verified_is_a_configuration_error(tls_server: TlsServer) -> None:
    unverified = RedisConnector(tls_connection(host="127.0.0.1", port=tls_server.port, ssl_enabled=True))
    waived = RedisConnector(
        tls_connection(
            host="127.0.0.1", port=tls_server.port, ssl_enabled=True, custom_config={"ssl_verify": False}
        )
    )
    try:
        with pytest.raises(ConfigurationError) as caught:
            await unverified.open()
        checked = await waived.check()
    finally:
        await unverified.close()
        await waived.close()

    assert caught.value.code == "INVALID_CONFIG"
    assert checked.status == "success", checked.error
