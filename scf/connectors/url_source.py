"""A file by URL for the ingestion connectors (CSV, PDF): fetched only through the SSRF guard.

The connector's own `url_allowed_hosts` / `url_allow_private` settings widen the guard on purpose (an
operator reaching an internal file server); everything else is refused as the API connector refuses it.
"""

from __future__ import annotations

from scf.connectors.api.errors import Redactor, status_error
from scf.connectors.api.guard import GuardPolicy, fetch
from scf.connectors.api.policy import safe_url


async def fetch_url_bytes(
    url: str, *, allowed_hosts: list[str], allow_private: bool, max_bytes: int, timeout: float
) -> bytes:
    """The body of a successful GET of `url`; typed errors for refusals, HTTP errors and size."""
    policy = GuardPolicy.build(allowed_hosts, allow_private=allow_private)
    body = await fetch(url, policy=policy, max_bytes=max_bytes, timeout=timeout)
    if body.status_code >= 400:
        raise status_error(body.status_code, body.headers, body.content, Redactor(), safe_url(url))
    return body.content
