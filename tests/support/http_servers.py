"""Real HTTP(S) servers for the API connector's tests: routes in a thread, a test PKI, a canary listener.

`HttpServer` is a threaded http.server (HTTP/1.1, optional TLS that may demand client certificates) that
records every request; `DemoApi` installs the shared routes (each auth method and pagination style, rate
limits, redirects, a gzip bomb); `CanaryListener` counts TCP connections: SSRF tests prove it sees none.
"""

from __future__ import annotations

import base64
import datetime
import functools
import gzip
import hashlib
import hmac
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ITEMS: list[dict[str, Any]] = [{"id": i, "name": f"item-{i}", "even": i % 2 == 0} for i in range(1, 8)]


@dataclass
class Seen:
    """One request as the server received it (header names lowercased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw_target: str
    client_cert: dict[str, Any] | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(value: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, json.dumps(value).encode(), [("Content-Type", "application/json"), *(headers or [])])


Handler = Callable[[Seen], Reply]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()  # in this thread, so a failing handshake blocks nobody
            except (ssl.SSLError, OSError):
                self.server.owner.tls_refusals += 1
                _linger(self.request)  # like real servers: let the client read the alert, not a reset
                raise
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        cert = self.request.getpeercert() if isinstance(self.request, ssl.SSLSocket) else None
        seen = Seen(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_target=self.path,
            client_cert=cert or None,
        )
        self.server.owner.requests.append(seen)
        handler = self.server.owner.routes.get(parts.path)
        reply = handler(seen) if handler is not None else json_reply({"error": "no such route"}, 404)
        self.send_response(reply.status)
        names = {name.lower() for name, _ in reply.headers}
        for name, value in reply.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch


def _linger(sock: ssl.SSLSocket) -> None:
    """Half-close and drain for a moment, so the TLS alert already sent is not lost to a TCP reset."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_WR)
        socket.socket.settimeout(sock, 1.0)
        while socket.socket.recv(sock, 65536):
            pass
    except OSError:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: HttpServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.owner.connections += 1
        if self.owner.tls is not None:
            sock = self.owner.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.errors += 1  # a refused TLS handshake, a client gone mid-reply: counted, not printed


class HttpServer:
    """A real HTTP server on `host` (loopback by default) in a daemon thread, with a route table."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.routes: dict[str, Handler] = {}
        self.requests: list[Seen] = []
        self.connections = 0
        self.errors = 0
        self.tls_refusals = 0
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CanaryListener:
    """Accepts and counts TCP connections on `host:port`; a guarded fetch must never reach it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.accepted = 0
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _serve(self) -> None:
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._sock.close()


class FakeDns:
    """A resolver answering from a table; a list of answers means successive answers (the last repeats)."""

    def __init__(self, table: Mapping[str, Sequence[str] | Sequence[Sequence[str]]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        answer = self.table.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if all(isinstance(a, str) for a in answer):
            return [str(a) for a in answer]
        turn = min(self.asked.count(host), len(answer)) - 1
        return [str(a) for a in answer[turn]]


# --- a test PKI -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    key_path = path.with_suffix(".key")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path, key_path


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    client: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path, server_dns: tuple[str, ...], server_ips: tuple[str, ...] = ()) -> Pki:
    """A CA, a server certificate for `server_dns`/`server_ips`, a client certificate, and a stranger's."""
    ca = _ca("scf test CA")
    (directory / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = _write(
        directory / "server.pem", *_leaf(ca, server_dns[0], dns=server_dns, ips=server_ips)
    )
    client_cert, client_key = _write(directory / "client.pem", *_leaf(ca, "scf-client", client=True))
    stranger = _ca("someone else's CA")
    stranger_cert, stranger_key = _write(
        directory / "stranger.pem", *_leaf(stranger, "scf-stranger", client=True)
    )
    return Pki(
        directory / "ca.pem", server_cert, server_key, client_cert, client_key, stranger_cert, stranger_key
    )


# --- the shared demo API ----------------------------------------------------------------------------


@functools.cache
def gzip_bomb(decoded_bytes: int) -> bytes:
    """A gzip body of zeros that decodes to `decoded_bytes` (about a thousandth of that on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(decoded_bytes // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class DemoCredentials:
    username: str = "reader"
    password: str = "basic-pass-7f3a"
    api_key: str = "api-key-1c9e"
    bearer: str = "bearer-token-55d2"
    client_id: str = "scf-client"
    client_secret: str = "client-secret-8b0f"
    jwt_secret: str = "jwt-shared-secret-that-is-long-enough-3e1c"
    aws_access_key: str = "AKIDEXAMPLE"
    aws_secret_key: str = "aws-secret-key-6a4d"
    aws_session_token: str = "aws-session-token-90ab"
    aws_region: str = "eu-west-1"
    rsa_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    @property
    def rsa_pem(self) -> str:
        return self.rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


class DemoApi:
    """The routes the API tests share, with the state they inspect (issued tokens, revocations, ...)."""

    def __init__(self, server: HttpServer, credentials: DemoCredentials | None = None) -> None:
        self.server = server
        self.creds = credentials or DemoCredentials()
        self.tokens_issued: list[str] = []
        self.revoked: set[str] = set()
        self.token_lifetime = 3600
        self.throttle_next = 0
        routes: dict[str, Handler] = {
            "/": lambda seen: json_reply({"service": "demo"}),
            "/records": lambda seen: json_reply({"data": {"items": ITEMS[:3]}}),
            "/root-list": lambda seen: json_reply(ITEMS[:2]),
            "/not-json": lambda seen: Reply(200, b"<html>hello</html>", [("Content-Type", "text/html")]),
            "/scalars": lambda seen: json_reply({"data": [1, 2, 3]}),
            "/echo": self._echo,
            "/pages/page": self._page_style,
            "/pages/offset": self._offset_style,
            "/pages/cursor": self._cursor_style,
            "/pages/link": self._link_style,
            "/auth/basic": self._basic,
            "/auth/key-header": lambda s: self._guarded(s, s.headers.get("x-api-key") == self.creds.api_key),
            "/auth/key-query": lambda s: self._guarded(s, s.arg("api_key") == self.creds.api_key),
            "/auth/bearer": lambda s: self._guarded(
                s, s.headers.get("authorization") == f"Bearer {self.creds.bearer}"
            ),
            "/oauth/token": self._token,
            "/auth/oauth": self._oauth_protected,
            "/auth/jwt-hs256": lambda s: self._guarded(s, self._jwt_ok(s, "HS256")),
            "/auth/jwt-rs256": lambda s: self._guarded(s, self._jwt_ok(s, "RS256")),
            "/auth/sigv4": lambda s: self._guarded(s, self._sigv4_ok(s)),
            "/auth/mtls": lambda s: self._guarded(s, s.client_cert is not None),
            "/limited": self._limited,
            "/busy": lambda s: json_reply({"error": "busy"}, 503, [("Retry-After", "7")]),
            "/busy-no-hint": lambda s: json_reply({"error": "busy"}, 503),
            "/broken": lambda s: json_reply({"error": "boom"}, 500),
            "/missing": lambda s: json_reply({"error": "nope"}, 404),
            "/invalid": lambda s: json_reply({"error": f"bad query {s.raw_target}"}, 400),
            "/forbidden": lambda s: json_reply({"error": "no"}, 403),
            "/redirect": self._redirect,
            "/bomb": lambda s: Reply(200, gzip_bomb(64 * 1024 * 1024), [("Content-Encoding", "gzip")]),
            "/gzipped": lambda s: Reply(
                200,
                gzip.compress(json.dumps({"data": {"items": ITEMS}}).encode()),
                [("Content-Encoding", "gzip"), ("Content-Type", "application/json")],
            ),
            "/slow": self._slow,
        }
        for path, handler in routes.items():
            server.route(path, handler)

    # pagination: 7 items; page size from the request (default 3)
    def _size(self, seen: Seen, name: str) -> int:
        return int(seen.arg(name) or 3)

    def _page_style(self, seen: Seen) -> Reply:
        page, size = int(seen.arg("page") or 1), self._size(seen, "per_page")
        return json_reply({"items": ITEMS[(page - 1) * size : page * size], "page": page})

    def _offset_style(self, seen: Seen) -> Reply:
        offset, size = int(seen.arg("offset") or 0), self._size(seen, "limit")
        return json_reply({"results": ITEMS[offset : offset + size]})

    def _cursor_style(self, seen: Seen) -> Reply:
        start = int(seen.arg("after") or 0)
        chunk = ITEMS[start : start + 3]
        following = str(start + 3) if start + 3 < len(ITEMS) else None
        return json_reply({"data": chunk, "meta": {"next": following}})

    def _link_style(self, seen: Seen) -> Reply:
        start = int(seen.arg("start") or 0)
        headers = []
        if start + 3 < len(ITEMS):
            headers.append(
                ("Link", f'</pages/link?start={start + 3}>; rel="next", </pages/link>; rel="first"')
            )
        return json_reply(ITEMS[start : start + 3], headers=headers)

    # auth
    def _guarded(self, seen: Seen, ok: bool) -> Reply:
        if not ok:
            return json_reply({"error": "unauthorized"}, 401, [("WWW-Authenticate", 'Bearer realm="demo"')])
        return json_reply({"data": ITEMS[:2]})

    def _basic(self, seen: Seen) -> Reply:
        expected = base64.b64encode(f"{self.creds.username}:{self.creds.password}".encode()).decode()
        return self._guarded(seen, seen.headers.get("authorization") == f"Basic {expected}")

    def _token(self, seen: Seen) -> Reply:
        form = parse_qs(seen.body.decode())
        basic = seen.headers.get("authorization", "")
        pair = base64.b64decode(basic.removeprefix("Basic ")).decode() if basic.startswith("Basic ") else ""
        good = f"{self.creds.client_id}:{self.creds.client_secret}"
        in_body = form.get("client_id", [""])[0] + ":" + form.get("client_secret", [""])[0]
        if form.get("grant_type") != ["client_credentials"]:
            return json_reply({"error": "unsupported_grant_type"}, 400)
        if good not in (pair, in_body):
            return json_reply({"error": "invalid_client"}, 400)
        token = f"tok-{uuid.uuid4().hex}"
        self.tokens_issued.append(token)
        return json_reply({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime})

    def _oauth_protected(self, seen: Seen) -> Reply:
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        return self._guarded(seen, token in self.tokens_issued and token not in self.revoked)

    def _jwt_ok(self, seen: Seen, algorithm: str) -> bool:
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header, claims = json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(claims_b64))
            signing_input, signature = f"{header_b64}.{claims_b64}".encode(), b64url_decode(signature_b64)
        except ValueError:
            return False
        if header.get("alg") != algorithm or not claims.get("exp", 0) > time.time():
            return False
        if algorithm == "HS256":
            expected = hmac.new(self.creds.jwt_secret.encode(), signing_input, hashlib.sha256).digest()
            return hmac.compare_digest(expected, signature)
        try:
            self.creds.rsa_key.public_key().verify(
                signature, signing_input, padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return False
        return True

    def _sigv4_ok(self, seen: Seen) -> bool:
        """Recompute the signature with botocore (an independent implementation) from what arrived."""
        authorization = seen.headers.get("authorization", "")
        fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[-1].split(","))
        signed = fields.get("SignedHeaders", "").split(";")
        request = AWSRequest(
            method=seen.method,
            url=f"http://{seen.headers['host']}{seen.raw_target}",
            headers={name: seen.headers[name] for name in signed if name in seen.headers},
            data=seen.body,
        )
        request.context["timestamp"] = seen.headers.get("x-amz-date", "")
        credentials = Credentials(
            self.creds.aws_access_key, self.creds.aws_secret_key, self.creds.aws_session_token
        )
        signer = SigV4Auth(credentials, "execute-api", self.creds.aws_region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        return bool(
            fields.get("Signature") == expected
            and signed == sorted(signer.headers_to_sign(request))
            and seen.headers.get("x-amz-security-token") == self.creds.aws_session_token
        )

    # failures
    def _limited(self, seen: Seen) -> Reply:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return json_reply({"error": "slow down"}, 429, [("Retry-After", seen.arg("wait") or "2")])
        return json_reply({"data": ITEMS[:1]})

    def _redirect(self, seen: Seen) -> Reply:
        return Reply(int(seen.arg("status") or 302), b"", [("Location", seen.arg("to") or "/records")])

    def _slow(self, seen: Seen) -> Reply:
        time.sleep(float(seen.arg("seconds") or 2))
        return json_reply({"data": []})

    def _echo(self, seen: Seen) -> Reply:
        return json_reply(
            {
                "data": [
                    {
                        "method": seen.method,
                        "query": {k: v[0] for k, v in seen.query.items()},
                        "headers": seen.headers,
                        "body": seen.body.decode(),
                    }
                ]
            }
        )


@dataclass
class RunningApi:
    server: HttpServer
    api: DemoApi

    @property
    def url(self) -> str:
        return self.server.url


def running_api(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[RunningApi]:
    """A started `HttpServer` with the `DemoApi` routes, stopped afterwards (for fixtures)."""
    server = HttpServer(host, tls=tls).start()
    try:
        yield RunningApi(server, DemoApi(server))
    finally:
        server.stop()
