"""`page_token` of ingest and preview: where a call stopped, so the next call resumes there.

The token holds the URL of the page to fetch next, how many of its records were already returned, and
the page and record counts before it (what the `page` and `offset` styles count from). It is plain
base64url JSON, not a secret: the connector never issues one whose URL holds one of its secrets, and a
token is only followed on the endpoint's own origin, through the SSRF guard like any URL.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import httpx
from pydantic import Field, ValidationError

from scf.connectors.operation_table import Strict
from scf.connectors.web.policy import MAX_URL_CHARS
from scf.schemas.errors import ErrorCode, PermanentError

MAX_TOKEN_CHARS = 4096


class _Token(Strict):
    u: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    s: int = Field(default=0, ge=0, le=1_000_000)
    p: int = Field(default=0, ge=0, le=1_000_000)
    r: int = Field(default=0, ge=0, le=1_000_000_000)


@dataclass(frozen=True)
class Resume:
    """Where to go on: the page's URL, its records already returned, pages and records before it."""

    url: httpx.URL
    skip: int = 0
    pages: int = 0
    records: int = 0


def encode(resume: Resume) -> str | None:
    """The token, or None when it would not fit in a request's `page_token`."""
    raw = json.dumps(
        {"u": str(resume.url), "s": resume.skip, "p": resume.pages, "r": resume.records},
        separators=(",", ":"),
    )
    token = base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")
    return token if len(token) <= MAX_TOKEN_CHARS else None


def decode(token: str) -> Resume:
    """The resume point of a token this connector issued; `permanent` INVALID_REQUEST otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parsed = _Token.model_validate_json(raw)
        url = httpx.URL(parsed.u)
    except (binascii.Error, ValueError, ValidationError, httpx.InvalidURL):
        raise PermanentError(
            "page_token is not a token this connector issued", code=ErrorCode.INVALID_REQUEST
        ) from None
    return Resume(url, parsed.s, parsed.p, parsed.r)
