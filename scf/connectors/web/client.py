"""`GuardedClient`: one pooled httpx client that checks, pins and caps every hop of every request.

Redirects are followed here, never by httpx: each hop's URL is checked (and its addresses pinned)
before it is requested, hops are capped, and credentials are dropped when a hop changes origin.
Cookies are never stored, proxies and environment settings never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Self

import httpx

from scf.connectors.web.bodies import ACCEPT_ENCODING, FetchedBody, read_capped
from scf.connectors.web.policy import GuardPolicy, check_url, refusal
from scf.connectors.web.transport import PinnedBackend, PinnedTransport, default_ssl_context
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.secret_fields import header_is_secret

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Dropped from a redirected request that leaves the original origin, with any secret-looking header.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")
# Headers are credentials unless on the safe list (secret_fields); these describe the transfer, not a caller.
_TRANSPORT_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "accept-encoding"})
USER_AGENT = "service-connector-factory/api"


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def redirect_request(
    request: httpx.Request, response: httpx.Response, sensitive_headers: Iterable[str] = ()
) -> httpx.Request:
    """The next hop's request (RFC 9110 §15.4): method and body rules, credentials only within origin."""
    location = response.headers["location"]
    try:
        target = request.url.join(location)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise refusal(location, f"the redirect target does not parse ({exc})") from None
    method, content = request.method, request.content
    status = response.status_code
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", b""
    headers = httpx.Headers(request.headers)
    headers.pop("host", None)
    if not content:
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    if origin(target) != origin(request.url):
        drop = CREDENTIAL_HEADERS | {h.lower() for h in sensitive_headers}
        for name in list(headers.keys()):
            if name.lower() in drop or (header_is_secret(name) and name.lower() not in _TRANSPORT_HEADERS):
                del headers[name]
    return httpx.Request(
        method, target, headers=headers, content=content or None, extensions=request.extensions
    )


def clipped(timeout: httpx.Timeout, remaining: float | None) -> httpx.Timeout:
    """Every phase's timeout, none longer than what is left of the total budget."""
    if remaining is None:
        return timeout

    def clip(value: float | None) -> float:
        return max(0.001, remaining if value is None else min(value, remaining))

    return httpx.Timeout(
        connect=clip(timeout.connect),
        read=clip(timeout.read),
        write=clip(timeout.write),
        pool=clip(timeout.pool),
    )


class GuardedClient:
    """An httpx client that can only reach what `policy` admits. Raises the project's typed errors for
    refusals (`security`) and caps (`permanent`); httpx exceptions for network trouble pass through.
    """

    def __init__(
        self,
        policy: GuardPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.backend = PinnedBackend()
        transport = PinnedTransport(
            self.backend,
            ssl_context=ssl_context or default_ssl_context(),
            limits=limits or httpx.Limits(max_connections=10, max_keepalive_connections=5),
        )
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            cookies=no_cookies,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, **(headers or {})},
        )

    def build_request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json: object = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Request:
        """A request to send with `send`; a URL httpx cannot parse is refused like any odd URL."""
        try:
            return self._client.build_request(
                method, url, params=params, headers=headers, json=json, data=data
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise refusal(str(url), f"the URL does not parse ({exc})") from None

    async def send(
        self,
        request: httpx.Request,
        *,
        max_bytes: int,
        timeout: httpx.Timeout,
        deadline: float | None = None,
        follow_redirects: bool = True,
        sensitive_headers: Iterable[str] = (),
    ) -> FetchedBody:
        """Check, pin and send `request`, following redirects; the decoded body is capped at `max_bytes`.

        `deadline` (event-loop time) bounds the whole exchange, every hop and the body included.
        """
        if deadline is None:
            return await self._send(request, max_bytes, timeout, None, follow_redirects, sensitive_headers)
        async with asyncio.timeout_at(deadline):
            return await self._send(
                request, max_bytes, timeout, deadline, follow_redirects, sensitive_headers
            )

    async def _send(
        self,
        request: httpx.Request,
        max_bytes: int,
        timeout: httpx.Timeout,
        deadline: float | None,
        follow_redirects: bool,
        sensitive_headers: Iterable[str],
    ) -> FetchedBody:
        loop = asyncio.get_running_loop()
        hops = self.policy.max_redirects if follow_redirects else 0
        for hop in range(hops + 1):
            checked = await check_url(request.url, self.policy)
            self.backend.pin(checked)
            remaining = None if deadline is None else deadline - loop.time()
            request.extensions = {**request.extensions, "timeout": clipped(timeout, remaining).as_dict()}
            response = await self._client.send(request, stream=True)
            try:
                redirected = response.status_code in REDIRECT_STATUSES and "location" in response.headers
                if not (redirected and follow_redirects):
                    content = await read_capped(response, max_bytes)
                    return FetchedBody(response.status_code, response.headers, content, request.url, hop)
                if hop == hops:
                    break
                request = redirect_request(request, response, sensitive_headers)
            finally:
                await response.aclose()
        raise PermanentError(
            f"the API redirected more than {hops} times (custom_config.max_redirects)",
            code=ErrorCode.LIMIT_EXCEEDED,
        )

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
