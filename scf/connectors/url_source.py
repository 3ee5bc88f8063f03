"""A file by URL for the ingestion connectors (CSV, PDF): fetched only through the SSRF guard.

The connector's own `url_allowed_hosts` / `url_allow_private` settings widen the guard on purpose (an
operator reaching an internal file server); everything else is refused as the API connector refuses it.
The URL is the caller's choice, not the connector's service: a server there that fails, hangs or does not
exist is the request's problem, so it is `permanent` and never counts toward the connector's breaker (a
few requests naming a dead URL would otherwise stop every caller's parsing).
"""

from __future__ import annotations

from scf.connectors.web.errors import status_error
from scf.connectors.web.fetch import GuardPolicy, fetch
from scf.connectors.web.policy import safe_url
from scf.connectors.web.redaction import Redactor
from scf.schemas.errors import ConnectorError, ErrorCategory, PermanentError


async def fetch_url_bytes(
    url: str, *, allowed_hosts: list[str], allow_private: bool, max_bytes: int, timeout: float
) -> bytes:
    """The body of a successful GET of `url`; typed errors for refusals, HTTP errors and size."""
    policy = GuardPolicy.build(allowed_hosts, allow_private=allow_private)
    try:
        body = await fetch(url, policy=policy, max_bytes=max_bytes, timeout=timeout)
    except ConnectorError as exc:
        raise about_the_url(exc) from exc
    if body.status_code >= 400:
        raise about_the_url(
            status_error(body.status_code, body.headers, body.content, Redactor(), safe_url(url))
        )
    return body.content


def about_the_url(error: ConnectorError) -> ConnectorError:
    """Trouble of the URL's server (unreachable, timing out, failing, throttling) as a `permanent` error
    of this request; refusals (security, configuration, permanent) stay as they are."""
    if error.category not in (ErrorCategory.TRANSIENT, ErrorCategory.RESOURCE):
        return error
    return PermanentError(
        f"the file's URL could not be fetched: {error.message}", code=error.code, detail=error.detail
    )
