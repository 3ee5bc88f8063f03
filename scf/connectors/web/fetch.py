"""The SSRF guard's public API: fetch a user-given URL only if it, and every redirect hop, is public.

Pinning: `check_url` resolves the host once and approves its addresses; the transport's httpcore network
backend connects to those IPs and never resolves again, while the URL keeps the hostname, so the Host
header, TLS SNI and certificate verification all still use the hostname (see transport.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from scf.connectors.web.bodies import FetchedBody
from scf.connectors.web.client import GuardedClient
from scf.connectors.web.errors import translate_transport_error
from scf.connectors.web.policy import CheckedUrl, GuardPolicy, Resolver, check_url, safe_url, system_resolver
from scf.connectors.web.transport import PinnedBackend, PinnedTransport

# Why not request the IP URL with `extensions={"sni_hostname": host}`: httpcore pools connections by the
# URL's origin, so two hostnames on one IP would share a connection whose certificate was verified for
# only one of them, and every message and redirect would carry the IP instead of the name.

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


async def fetch(
    url: str,
    *,
    policy: GuardPolicy,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
) -> FetchedBody:
    """GET `url` through the guard, whatever the status; `timeout` bounds the whole exchange.

    Raises only typed errors: `security` (a refused URL or hop, a refused client certificate),
    `permanent` LIMIT_EXCEEDED (body or redirects over the cap), `transient` (cannot resolve or
    connect, timeouts), `configuration` (TLS verification failed).
    """
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with GuardedClient(policy) as client:
            request = client.build_request("GET", url, headers=dict(headers or {}))
            return await client.send(
                request, max_bytes=max_bytes, timeout=httpx.Timeout(timeout), deadline=deadline
            )
    except Exception as exc:
        raise translate_transport_error(exc) from exc


__all__ = [
    "CheckedUrl",
    "FetchedBody",
    "GuardPolicy",
    "GuardedClient",
    "PinnedBackend",
    "PinnedTransport",
    "Resolver",
    "check_url",
    "fetch",
    "safe_url",
    "system_resolver",
]
