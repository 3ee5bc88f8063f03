"""An httpx transport whose sockets can only reach addresses the SSRF guard approved ("pins").

`PinnedBackend` is an httpcore network backend: asked to connect to `host:port`, it connects to the
pinned IPs for that pair and never resolves `host`; without a pin it refuses. The URL keeps its
hostname, so the Host header, TLS SNI and certificate verification all use the real hostname.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import certifi
import httpcore
import httpx

from scf.connectors.web.policy import CheckedUrl

#: Pins kept per client; the oldest is dropped beyond this (a new request pins again before it connects).
MAX_PINS = 1024


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects `host:port` only to the addresses pinned for it; counts the sockets it opened."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}
        self.connections_opened = 0

    def pin(self, checked: CheckedUrl) -> None:
        key = (checked.host.lower(), checked.port)
        self._pins.pop(key, None)
        self._pins[key] = checked.addresses
        while len(self._pins) > MAX_PINS:
            del self._pins[next(iter(self._pins))]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get((host.lower(), port))
        if not addresses:
            raise httpcore.ConnectError(f"no approved address for {host}:{port}; refusing to resolve it")
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            self.connections_opened += 1
            return stream
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable through the API connector")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` (its request/response mapping and error translation) over a pool that
    connects through `PinnedBackend`. No proxy, no environment, HTTP/1.1 only.
    """

    def __init__(self, backend: PinnedBackend, *, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits, http1=True, http2=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            # httpx 0.28 keeps its pool in `_pool`; if that ever changes, refuse rather than go unpinned.
            raise RuntimeError("this httpx version cannot be pinned; the API connector refuses to run")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )
        self.backend = backend


def default_ssl_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """A client TLS context: the given CA bundle (else certifi's, like httpx), hostname checks, an
    optional client certificate. Raises OSError/ssl.SSLError for unreadable files.
    """
    context = ssl.create_default_context(cafile=ca_file or certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file, password=key_password)
    return context
