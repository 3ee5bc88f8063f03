"""Redaction of text taken from HTTP replies and URLs: known secrets, URL credentials, auth headers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from scf.schemas.secrets import MASK, mask_url

MAX_BODY_EXCERPT = 200


class Redactor:
    """Masks known secret values (and credentials in URLs or auth headers) in text shown or logged."""

    _AUTH_SCHEME = re.compile(r"\b(Bearer|Basic|Digest|AWS4-HMAC-SHA256)\s+[^\s,;\"']+", re.IGNORECASE)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def plus(self, secrets: Iterable[str]) -> Redactor:
        return Redactor((*self._secrets, *secrets))

    def holds_secret(self, text: str) -> bool:
        """Whether `text` holds one of the known secret values verbatim."""
        return any(secret in text for secret in self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return self._AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", mask_url(text))


def body_excerpt(content: bytes, redact: Redactor) -> str:
    text = " ".join(content[: MAX_BODY_EXCERPT * 4].decode("utf-8", errors="replace").split())
    text = redact(text)
    return text if len(text) <= MAX_BODY_EXCERPT else text[: MAX_BODY_EXCERPT - 3] + "..."
