"""Elasticsearch for tests: a noida-db server (the ES 8 REST API from PyPI) or a real cluster, as targets.

`start_noida` runs the noida-db binary with only its Elasticsearch service on a free port and waits for
it; the `es_target` fixture is parametrized over noida-db and, when SCF_TEST_ELASTICSEARCH_URL is set,
that real cluster. `SecureGateway` is a real HTTPS reverse proxy that checks credentials the way ES
security does, for what noida-db lacks (TLS, authentication): it forwards to noida-db unchanged.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from elasticsearch import Elasticsearch

from scf.schemas.connection import ServiceConnection
from tests.support.services import IN_CI

REAL_URL_ENV = "SCF_TEST_ELASTICSEARCH_URL"
_URL_LINE = re.compile(r"^\s*elasticsearch\s+(https?://\S+)\s*$", re.MULTILINE)


class NoidaServer(NamedTuple):
    url: str
    process: subprocess.Popen[bytes]


def noida_command() -> list[str]:
    """The server binary itself, not the `noida-db` Python wrapper, so its PID is the server's PID.

    Like the wrapper, mark it executable first: wheels do not always keep the mode bits.
    """
    binary = Path(str(files("noida_db").joinpath("noida-db")))
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return [str(binary)]


def start_noida(data_dir: Path, timeout: float = 30.0) -> NoidaServer:
    """Start noida-db with only Elasticsearch, on a free port; return once its HTTP root answers.

    `--only elasticsearch` matters: its other services would take 5432/6379 from the real ones.
    """
    log_path = data_dir / "noida.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # our own command line
        [
            *noida_command(),
            "start",
            "--data-dir",
            str(data_dir),
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + timeout
    url: str | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"noida-db exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
        if url is None:
            found = _URL_LINE.search(log_path.read_text(errors="replace"))
            url = found.group(1) if found else None
        if url is not None and _answers(url):
            return NoidaServer(url, process)
        time.sleep(0.05)
    stop_noida(NoidaServer(url or "", process))
    raise TimeoutError(f"noida-db not ready in {timeout}s:\n{log_path.read_text()[-2000:]}")


def stop_noida(server: NoidaServer, timeout: float = 10.0) -> None:
    """SIGTERM by PID (it saves and exits), SIGKILL if it has not gone after `timeout`. Idempotent."""
    process = server.process
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def server_info(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/", timeout=5.0) as reply:  # our own loopback URL
        info: dict[str, Any] = json.load(reply)
    return info


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=1.0) as reply:  # our own loopback URL
            return bool(reply.status == 200)
    except OSError:
        return False


def is_noida(info: dict[str, Any]) -> bool:
    """Whether an info (`GET /`) reply comes from noida-db rather than Elasticsearch."""
    version = info.get("version") or {}
    return info.get("name") == "noida-db" or version.get("build_hash") == "noida"


# --- targets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EsTarget:
    """One server the suite runs against, and how a connector reaches it."""

    name: str
    url: str
    is_noida: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    ca_certs: str | None = None

    def body(self, service_name: str, **custom: Any) -> dict[str, Any]:
        """A create body for this target; `custom` adds to (or replaces) its custom_config."""
        config: dict[str, Any] = {"hosts": [self.url], "request_timeout": 30}
        if self.api_key:
            config["api_key"] = self.api_key
        if self.ca_certs:
            config["ca_certs"] = self.ca_certs
        config.update(custom)
        body: dict[str, Any] = {
            "service_type": "elasticsearch",
            "service_name": service_name,
            "custom_config": config,
            "connection_timeout": 30,
        }
        if self.username:
            body.update(username=self.username, password=self.password)
        return body

    def connection(self, service_name: str, **custom: Any) -> ServiceConnection:
        return ServiceConnection.model_validate(self.body(service_name, **custom))

    def admin(self) -> Elasticsearch:
        """A synchronous client for test setup and cleanup (never the code under test)."""
        auth: dict[str, Any] = {}
        if self.username:
            auth["basic_auth"] = (self.username, self.password or "")
        if self.api_key:
            auth["api_key"] = self.api_key
        if self.ca_certs:
            auth["ca_certs"] = self.ca_certs
        return Elasticsearch(self.url, request_timeout=30, **auth)

    def unique_index(self, prefix: str = "scf-test") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"


def target_names() -> list[str]:
    return ["noida-db", "elasticsearch"] if os.environ.get(REAL_URL_ENV) else ["noida-db"]


def real_target() -> EsTarget:
    """The cluster of SCF_TEST_ELASTICSEARCH_URL.

    Credentials may ride in the URL (https://user:password@host:9200) or in
    SCF_TEST_ELASTICSEARCH_API_KEY; a CA bundle in SCF_TEST_ELASTICSEARCH_CA_CERTS.
    """
    parts = urlsplit(os.environ[REAL_URL_ENV])
    host = parts.hostname or "localhost"
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if parts.scheme == "https" else 9200)
    url = urlunsplit((parts.scheme, f"{netloc}:{port}", parts.path.rstrip("/"), "", ""))
    target = EsTarget(
        name="elasticsearch",
        url=url,
        is_noida=False,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        api_key=os.environ.get("SCF_TEST_ELASTICSEARCH_API_KEY") or None,
        ca_certs=os.environ.get("SCF_TEST_ELASTICSEARCH_CA_CERTS") or None,
    )
    with target.admin() as admin:
        info = dict(admin.info().body)
    return replace(target, is_noida=is_noida(info))


_shared: dict[str, NoidaServer] = {}


@pytest.fixture(scope="session")
def noida_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NoidaServer]:
    """One noida-db per test session, however many modules import this fixture.

    If it cannot start, the tests fail under CI and skip on a developer machine.
    """
    server = _shared.get("server")
    if server is None:
        try:
            server = start_noida(tmp_path_factory.mktemp("noida-db"))
        except (ImportError, OSError, RuntimeError, TimeoutError) as exc:
            message = f"noida-db did not start: {exc}"
            if IN_CI:
                pytest.fail(message + " (CI requires it)")
            pytest.skip(message)
        _shared["server"] = server
    yield server
    stop_noida(server)


@pytest.fixture(scope="session", params=target_names())
def es_target(request: pytest.FixtureRequest) -> EsTarget:
    if request.param == "noida-db":
        server: NoidaServer = request.getfixturevalue("noida_server")
        return EsTarget(name="noida-db", url=server.url, is_noida=is_noida(server_info(server.url)))
    return real_target()


@pytest.fixture(scope="session")
def noida_target(noida_server: NoidaServer) -> EsTarget:
    return EsTarget(name="noida-db", url=noida_server.url, is_noida=is_noida(server_info(noida_server.url)))


def skip_on_noida(target: EsTarget, reason: str) -> None:
    """Skip a test only against noida-db, naming what it lacks; a real cluster runs it."""
    if target.is_noida:
        pytest.skip(f"noida-db 0.2.3 {reason}")


# --- TLS and authentication in front of noida-db ------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_certs: Path
    certificate: Path
    private_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scf test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_certs.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.private_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tls


@dataclass
class Credentials:
    """Who the gateway lets in. `readers` may only read the root (`GET /`): anything else is 403."""

    users: dict[str, str] = field(default_factory=dict)
    api_keys: set[str] = field(default_factory=set)
    bearer_tokens: set[str] = field(default_factory=set)
    readers: set[str] = field(default_factory=set)


class SecureGateway:
    """HTTPS in front of noida-db, answering 401/403 with Elasticsearch's own security error bodies."""

    _FORWARDED_HEADERS = ("content-type", "x-elastic-product", "warning")

    def __init__(self, upstream: str, credentials: Credentials, tls: TlsFiles) -> None:
        self.upstream = upstream
        self.credentials = credentials
        self.tls = tls
        self.seen_authorization: list[str] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.certificate, self.tls.private_key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        self.url = f"https://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _principal(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None
            return user if self.credentials.users.get(user) == password else None
        if scheme == "apikey" and value in self.credentials.api_keys:
            return "api_key"
        if scheme == "bearer" and value in self.credentials.bearer_tokens:
            return "bearer"
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        self.seen_authorization.append(header.partition(" ")[0])
        principal = self._principal(header) if header else None
        if principal is None:
            return _security_error(401, f"unable to authenticate for REST request [{request.path}]")
        if principal in self.credentials.readers and not (request.method == "GET" and request.path == "/"):
            return _security_error(403, f"action [{request.path}] is unauthorized for user [{principal}]")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=await request.read(), headers=headers
        ) as upstream:
            body = await upstream.read()
            forwarded = {k: v for k, v in upstream.headers.items() if k.lower() in self._FORWARDED_HEADERS}
            return web.Response(status=upstream.status, body=body, headers=forwarded)


def _security_error(status: int, reason: str) -> web.Response:
    error = {"type": "security_exception", "reason": reason}
    headers = {"WWW-Authenticate": 'Basic realm="security" charset="UTF-8"'} if status == 401 else {}
    return web.json_response(
        {"error": {"root_cause": [error], **error}, "status": status}, status=status, headers=headers
    )
