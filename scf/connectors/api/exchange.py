"""One logical API call: credentials (only for the base origin), the guard, one OAuth2 retry, status check.

`ApiCall` is the request as the connector plans it; `ApiExchange.send` turns it into HTTP, retries a
401 once when the authenticator can fetch a new credential, and turns any non-2xx reply into a typed
error whose text has every secret of the call masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import structlog

from scf.connectors.api.auth import Authenticator
from scf.connectors.api.paging import NextPage
from scf.connectors.api.settings import ApiSettings, secret_header
from scf.connectors.api.tokens import Resume, encode
from scf.connectors.web.bodies import FetchedBody
from scf.connectors.web.client import GuardedClient
from scf.connectors.web.errors import status_error
from scf.connectors.web.policy import safe_url
from scf.connectors.web.redaction import Redactor
from scf.schemas.errors import ConnectorError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ApiCall:
    """A request as planned: `credentials` says whether the connector's own headers and auth go along."""

    method: str
    url: httpx.URL = field(repr=False)  # may carry an API key in its query
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: Any = None
    credentials: bool = False

    def advance(self, page: NextPage) -> ApiCall:
        if page.url is not None:
            return replace(self, url=page.url)
        return replace(self, url=self.url.copy_merge_params(page.params))

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, str(self.url))


class ApiExchange:
    """Sends `ApiCall`s through one `GuardedClient` with the connector's settings and credentials."""

    def __init__(
        self,
        client: GuardedClient,
        settings: ApiSettings,
        auth: Authenticator,
        redact: Redactor,
        service_name: str,
    ) -> None:
        self.client = client
        self.settings = settings
        self.auth = auth
        self._redact = redact
        self._service_name = service_name

    async def send(self, call: ApiCall, deadline: float) -> FetchedBody:
        """The 2xx reply to `call`, or a typed error (security for 401/403, resource for 429, ...)."""
        reply = await self.reply(call, deadline)
        if not 200 <= reply.status_code < 300:
            raise self.error(call, reply)
        return reply

    def error(self, call: ApiCall, reply: FetchedBody) -> ConnectorError:
        """The typed error for a non-2xx reply, its text masked of every secret of the call."""
        return status_error(
            reply.status_code, reply.headers, reply.content, self.redactor(call), safe_url(reply.url)
        )

    async def reply(self, call: ApiCall, deadline: float) -> FetchedBody:
        """The reply to `call` whatever its status, after one credential refresh on a 401."""
        retried = False
        while True:
            request = await self._request(call)
            reply = await self.client.send(
                request,
                max_bytes=self.settings.max_response_bytes,
                timeout=self.settings.timeout,
                deadline=deadline,
                follow_redirects=self.settings.follow_redirects,
                sensitive_headers=self.auth.sensitive_headers,
            )
            refused = reply.status_code == 401 and call.credentials and not retried
            if refused and self.auth.refresh_after_refusal(request):
                log.info("api_credential_refreshed", service_name=self._service_name, method=self.auth.method)
                retried = True
                continue
            return reply

    def page_token(self, call: ApiCall, resume: Resume) -> str | None:
        """The `next_page_token` for `resume`; None when its URL would show one of the call's secrets."""
        if self.redactor(call).holds_secret(str(resume.url)):
            log.warning("api_page_token_withheld", url=safe_url(resume.url), reason="secret in the URL")
            return None
        return encode(resume)

    def redactor(self, call: ApiCall) -> Redactor:
        """Masks the connector's secrets and this call's secret-looking headers."""
        own = [v for k, v in call.headers.items() if secret_header(k)]
        return self._redact.plus([*self.auth.secrets(), *own])

    async def _request(self, call: ApiCall) -> httpx.Request:
        secret = self.settings.secret_headers if call.credentials else {}
        headers = {**self.settings.headers, **secret, **call.headers}
        request = self.client.build_request(call.method, call.url, headers=headers, json=call.body)
        if call.credentials:
            request = await self.auth.apply(request)
        return request
