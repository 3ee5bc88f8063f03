"""Private, throwaway PostgreSQL, Redis and RabbitMQ instances for tests that kill, restart or reconfigure.

Each runs as a child process on a free loopback port with its data in its own temp dir, so fault tests
never touch the machine's shared services. `start()` after `kill()`/`stop()` reuses the same port and
data dir (PostgreSQL and RabbitMQ keep their data; this Redis has no persistence). Every wait is
bounded, and a process tree left running is killed when the object is closed or collected, or at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl as stdlib_ssl
import struct
import subprocess
import tempfile
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
LOOPBACK = "127.0.0.1"
_SSL_REQUEST_CODE = 80877103  # PostgreSQL's SSLRequest message
#: How long processes orphaned by a stopped or killed service get to exit before they are SIGKILLed.
ORPHAN_GRACE = 5.0


class PrivateServiceError(RuntimeError):
    """A private service did not start or stop in time; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA (EC P-256, valid one day) that issues server certificates for given host names."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "scf test CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def write_pem(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        path.chmod(0o644)
        return path

    def issue_server(self, hosts: Sequence[str]) -> tuple[bytes, bytes]:
        """(certificate PEM, private key PEM) for a server; `hosts` are IP addresses or DNS names."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        certificate = (
            _builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


# --- process trees -----------------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (non-zombie) process, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _signal(pid: int, signum: int, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, signum)


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` with any thread still running (a dead process's sockets are closed)."""
    return {pid for pid in pids if _running(pid)}


def _running(pid: int) -> bool:
    # A killed multi-threaded process (beam.smp) shows as a zombie while its other threads still exit
    # (an fsync in flight), holding its listening sockets: only when every thread is dead is it gone.
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            state = (task / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait (bounded) for processes we cannot `wait()` on; returns those still alive."""
    deadline = time.monotonic() + timeout
    running = alive(pids)
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = alive(running)
    return running


def _kill_tree(pid: int) -> None:
    """SIGKILL a session leader, its process group and every descendant (some leave the group)."""
    children = descendants(pid)
    _signal(pid, signal.SIGKILL, group=True)
    for child in children:
        _signal(child, signal.SIGKILL)
    _wait_gone(children | {pid}, ORPHAN_GRACE)


def _finalize(live: set[int], folder: Path) -> None:
    for pid in list(live):
        _kill_tree(pid)
    live.clear()
    shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class _OsUser:
    name: str
    uid: int
    gid: int
    home: str


def _os_user(name: str | None) -> _OsUser | None:
    """The account to drop to: only when we are root (PostgreSQL refuses root; RabbitMQ's cookie)."""
    if name is None or os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(name)
    return _OsUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


# --- the shared life cycle ---------------------------------------------------------------------------


class StartsOnEnter(ABC):
    """`with X() as x:` starts x (closing what a failed start left behind) and closes it on leaving."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PrivateService(StartsOnEnter):
    """Life cycle shared by every private service; subclasses say how to prepare, run and probe it.

    `start()` raises `PrivateServiceError` (with the log tail) when the service is not ready within
    `start_timeout`; the half-started process tree is killed first.
    """

    kind: ClassVar[str]
    run_as: ClassVar[str | None] = None
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 30.0

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"scf-{self.kind}-"))
        self.log_file = self.dir / f"{self.kind}.log"
        #: Seconds the last `start()` took until the service accepted work.
        self.last_start_seconds: float | None = None
        self._user = _os_user(self.run_as)
        self._process: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self._live: set[int] = set()
        self._finalizer = weakref.finalize(self, _finalize, self._live, self.dir)

    # --- what a subclass writes

    def _prepare(self) -> None:
        """One-time setup of the data dir before the first start."""

    @abstractmethod
    def _command(self) -> list[str]: ...

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}

    @abstractmethod
    def _ready(self) -> bool:
        """One cheap probe: does the service accept work yet?"""

    def _request_stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()

    def _request_immediate_stop(self, process: subprocess.Popen[bytes]) -> None:
        _kill_tree(process.pid)

    def _log_files(self) -> list[Path]:
        return [self.log_file]

    # --- the public life cycle

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        """Start (again, on the same port and data dir) and wait until the service accepts work."""
        if self.running:
            return self
        if not self.dir.exists():
            raise PrivateServiceError(f"private {self.kind} was closed")
        started = time.monotonic()
        if not self._prepared:
            self._prepare()
            self._prepared = True
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                env=self._env(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as_user(),
            )
        self._live.add(self._process.pid)
        try:
            self._wait_ready(self._process, started + self.start_timeout)
        except BaseException:
            self.kill()
            raise
        self.last_start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Graceful shutdown; SIGKILL after `stop_timeout`. A no-op when not running."""
        self._shut_down(self._request_stop)

    def kill(self) -> None:
        """SIGKILL the whole process tree at once (a crash: nothing is flushed or checkpointed)."""
        process = self._process
        if process is None:
            return
        _kill_tree(process.pid)
        process.wait(ORPHAN_GRACE)
        self._forget(process)

    def restart(self, *, immediate: bool = True) -> Self:
        """Stop (immediately: crash-like; else gracefully) and start again on the same port and data."""
        self._shut_down(self._request_immediate_stop if immediate else self._request_stop)
        return self.start()

    def close(self) -> None:
        """Stop (kill if that fails) and delete the temp dir. Idempotent."""
        try:
            self.stop()
        finally:
            self._finalizer()

    async def astart(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        await asyncio.to_thread(self.kill)

    async def arestart(self, *, immediate: bool = True) -> Self:
        return await asyncio.to_thread(self.restart, immediate=immediate)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in self._log_files():
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts) or "(no log)"

    # --- helpers

    def _wait_ready(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        while True:
            code = process.poll()
            if code is not None:
                raise PrivateServiceError(
                    f"private {self.kind} exited with code {code} while starting\n{self.log_tail()}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise PrivateServiceError(
                    f"private {self.kind} on port {self.port} was not ready within "
                    f"{self.start_timeout:.0f}s\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _shut_down(self, request: Callable[[subprocess.Popen[bytes]], None]) -> None:
        """Ask the service to stop, wait (bounded), then SIGKILL whatever of its tree is left."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            children = descendants(process.pid)
            request(process)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(process.pid)
                process.wait(ORPHAN_GRACE)
            for pid in _wait_gone(children, ORPHAN_GRACE):
                _signal(pid, signal.SIGKILL)
        self._forget(process)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        self._live.discard(process.pid)
        self._process = None

    def _as_user(self) -> dict[str, Any]:
        """`subprocess` arguments that drop root to the service's OS user (nothing when not root)."""
        if self._user is None:
            return {}
        return {"user": self._user.uid, "group": self._user.gid, "extra_groups": []}

    def _chown(self, *paths: Path) -> None:
        if self._user is None:
            return
        for path in paths:
            os.chown(path, self._user.uid, self._user.gid)

    def _chown_tree(self) -> None:
        self._chown(self.dir)
        for root, dirs, files in os.walk(self.dir):
            self._chown(*(Path(root, name) for name in (*dirs, *files)))

    def _run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """A helper command (initdb, rabbitmqctl) as the service's OS user; never raises on exit codes."""
        return subprocess.run(
            command,
            env=self._env(),
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self._as_user(),
        )


# --- PostgreSQL --------------------------------------------------------------------------------------


class PrivatePostgres(PrivateService):
    """A PostgreSQL 15 cluster (trust auth on 127.0.0.1, fsync off) run as the `postgres` OS user.

    `ssl=True` serves TLS with a server certificate for `ssl_hosts` signed by a fresh CA (`ca_file`,
    `ca`). `restart(immediate=True)` is PostgreSQL's immediate shutdown (SIGQUIT, as
    `pg_ctl -m immediate`): no checkpoint, so the next start runs crash recovery.
    """

    kind = "postgres"
    run_as = "postgres"
    user = "postgres"
    database = "postgres"
    host = LOOPBACK

    def __init__(self, *, ssl: bool = False, ssl_hosts: Sequence[str] = (LOOPBACK, "localhost")) -> None:
        super().__init__()
        self.ssl = ssl
        self.ssl_hosts = tuple(ssl_hosts)
        self.data_dir = self.dir / "data"
        self.ca_file = self.dir / "ca.crt"
        self.ca: CertificateAuthority | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        return self.dsn

    def _prepare(self) -> None:
        self._chown(self.dir)
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", self.user, "-A", "trust"]
        result = self._run([*initdb, "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], 60)
        if result.returncode != 0:
            raise PrivateServiceError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "'16MB'",
            "max_connections": "50",
            "logging_collector": "off",
        }
        if self.ssl:
            settings.update(self._write_certificates())
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# scf private test instance\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        (self.data_dir / "pg_hba.conf").write_text(  # replication: a PrivatePostgresReplica may stream
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
        )
        self._chown(self.data_dir / "pg_hba.conf")

    def reissue_certificate(
        self, ca: CertificateAuthority | None = None, hosts: Sequence[str] | None = None
    ) -> None:
        """Serve a new certificate (signed by `ca`, default this server's CA) to new sessions.

        `ca_file` keeps naming the original CA, so signing with another CA models a rotation the
        clients were not told about. Waits (bounded) until the reloaded server presents it.
        """
        if not self.ssl or self.ca is None:
            raise PrivateServiceError("reissue_certificate needs PrivatePostgres(ssl=True), started once")
        issued = self._write_server_certificate(ca or self.ca, hosts or self.ssl_hosts)
        if self._process is None or self._process.poll() is not None:
            return  # the next start() reads the new files
        self._process.send_signal(signal.SIGHUP)  # PostgreSQL reloads its TLS files on SIGHUP
        deadline = time.monotonic() + 10
        while self.presented_certificate() != issued:
            if time.monotonic() > deadline:
                raise PrivateServiceError(f"postgres did not reload its certificate\n{self.log_tail()}")
            time.sleep(0.1)

    def presented_certificate(self) -> x509.Certificate:
        """The certificate the server shows a new TLS session (unverified handshake)."""
        context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = stdlib_ssl.CERT_NONE
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(struct.pack("!ii", 8, _SSL_REQUEST_CODE))
            if sock.recv(1) != b"S":
                raise PrivateServiceError("postgres refused the SSLRequest")
            with context.wrap_socket(sock) as tls:
                der = tls.getpeercert(binary_form=True)
        if der is None:
            raise PrivateServiceError("postgres presented no certificate")
        return x509.load_der_x509_certificate(der)

    def _write_certificates(self) -> dict[str, str]:
        self.ca = CertificateAuthority.create("scf private postgres CA")
        self.ca.write_pem(self.ca_file)
        self._write_server_certificate(self.ca, self.ssl_hosts)
        return {
            "ssl": "on",
            "ssl_cert_file": f"'{self.dir / 'server.crt'}'",
            "ssl_key_file": f"'{self.dir / 'server.key'}'",
        }

    def _write_server_certificate(self, ca: CertificateAuthority, hosts: Sequence[str]) -> x509.Certificate:
        certificate, key = ca.issue_server(hosts)
        cert_file, key_file = self.dir / "server.crt", self.dir / "server.key"
        cert_file.write_bytes(certificate)
        key_file.write_bytes(key)
        key_file.chmod(0o600)  # PostgreSQL refuses a key others can read
        self._chown(cert_file, key_file)
        return x509.load_pem_x509_certificate(certificate)

    def _command(self) -> list[str]:
        return [str(PG_BIN / "postgres"), "-D", str(self.data_dir)]

    def _ready(self) -> bool:
        probe = [str(PG_BIN / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "1"]
        return subprocess.run(probe, capture_output=True, timeout=5, check=False).returncode == 0

    def _request_stop(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit

    def _request_immediate_stop(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGQUIT)  # "immediate" shutdown, as `pg_ctl stop -m immediate`


# --- Redis -------------------------------------------------------------------------------------------


class PrivateRedis(PrivateService):
    """A `redis-server`, by default without persistence: every restart (graceful or not) starts empty.

    `persistent=True` keeps an append-only file synced on every write, as a production fleet's Redis
    would: what was written survives a restart or a SIGKILL.
    """

    kind = "redis"
    start_timeout = 10.0
    stop_timeout = 10.0

    def __init__(self, *, persistent: bool = False) -> None:
        super().__init__()
        self.persistent = persistent

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _command(self) -> list[str]:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        # fmt: off
        return [
            binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
            "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always",
            "--dir", str(self.dir), "--daemonize", "no", "--logfile", "",
        ]
        # fmt: on

    def _ready(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


# --- RabbitMQ ----------------------------------------------------------------------------------------


class PrivateRabbit(PrivateService):
    """A second RabbitMQ node (`scf-<random>@localhost`) with its own ports, mnesia dir and no plugins.

    Run as the `rabbitmq` OS user with its HOME, so it shares the machine node's Erlang cookie and
    `rabbitmqctl -n <node>` reaches it. `start()` after `kill()` keeps the node name and mnesia dir:
    durable queues and persistent messages survive. guest/guest works from loopback.
    """

    kind = "rabbitmq"
    run_as = "rabbitmq"
    start_timeout = 90.0
    stop_timeout = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.node = f"scf-{uuid.uuid4().hex[:8]}@localhost"
        self.dist_port = free_port()
        self._home = self._user.home if self._user else os.environ.get("HOME", str(self.dir))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/"

    def url_for(self, vhost: str) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/{quote(vhost, safe='')}"

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`rabbitmqctl -n <this node> ...`; raises `PrivateServiceError` on a non-zero exit."""
        result = self._run([self._script("rabbitmqctl"), "-n", self.node, *args], timeout)
        if result.returncode != 0:
            raise PrivateServiceError(
                f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}"
            )
        return result

    def add_vhost(self, name: str) -> str:
        """Create a vhost that guest may use fully; returns its AMQP URL."""
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return self.url_for(name)

    def sync_quorum_metadata(self) -> None:
        """Write RabbitMQ's dets tables (Ra's server registry, Ra metadata) to disk now.

        They are saved every 0.5 s (registry) and 5 s (metadata): a quorum queue declared just before
        a SIGKILL comes back half-recovered (basic.get hangs, no messages). Call this after declaring
        quorum queues and before `kill()` so the test crashes the broker, not its bookkeeping.
        """
        self.ctl("eval", "[dets:sync(Table) || Table <- dets:all()], ok.")

    def _script(self, name: str) -> str:
        packaged = RABBITMQ_BIN / name  # the /usr/sbin wrappers `su` to rabbitmq, losing our process group
        return str(packaged) if packaged.exists() else (shutil.which(name) or name)

    def _prepare(self) -> None:
        for folder in ("mnesia", "log"):
            (self.dir / folder).mkdir()
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # keep /etc/rabbitmq/rabbitmq-env.conf out
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = {LOOPBACK}:{self.port}\n")
        self._chown_tree()

    def _env(self) -> dict[str, str]:
        return {
            **super()._env(),
            "HOME": self._home,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _command(self) -> list[str]:
        return [self._script("rabbitmq-server")]

    def _ready(self) -> bool:
        # the AMQP listener opens near the end of boot; only then is one (slow) rabbitmqctl call worth it
        if not accepts(self.port):
            return False
        return self._run([self._script("rabbitmqctl"), "-n", self.node, "await_startup"], 60).returncode == 0

    def _request_stop(self, process: subprocess.Popen[bytes]) -> None:
        try:
            stopped = self._run([self._script("rabbitmqctl"), "-n", self.node, "stop"], self.stop_timeout)
        except subprocess.TimeoutExpired:
            stopped = None
        if stopped is None or stopped.returncode != 0:
            process.terminate()  # the start script traps TERM and stops the node gracefully

    def _log_files(self) -> list[Path]:
        return [self.log_file, self.dir / "log" / f"{self.node}.log"]
