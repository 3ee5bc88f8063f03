"""Paged reads: the page token and the SQL that wraps a caller's query to fetch one page.

Keyset paging (recommended): `page_key` names result columns that order the rows and identify each one
(a primary key, or a unique tuple such as `(created_at, id)`); the token carries the last row's key and
the next page is `WHERE (key) > (last) ORDER BY key`, so a page costs the same however deep it is and
rows inserted meanwhile never shift it. Offset paging (no `page_key`, and the continuation of a reply cut
at `max_rows`) keeps the query's own order and skips the rows already sent: deterministic only when
the query's ORDER BY is total. A token is bound to its query and parameters: used with another, it is
refused. Tokens are not secret (they hold key values the caller has already seen) and not signed: a
forged token only changes where a read-only page starts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scf.connectors.postgresql.identifiers import quote_ident
from scf.schemas.errors import ErrorCode, PermanentError

_TOKEN_VERSION = 1
_ALIAS = "scf_page"


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts: after the key `after` (keyset) or at row `offset`."""

    query_digest: str
    after: tuple[Any, ...] | None = None
    offset: int = 0

    def encode(self) -> str:
        body: dict[str, Any] = {"v": _TOKEN_VERSION, "q": self.query_digest}
        if self.after is not None:
            body["a"] = list(self.after)
        else:
            body["o"] = self.offset
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str, query_digest: str) -> PageToken:
        """Raise `permanent` INVALID_REQUEST for a malformed token or one minted for another query."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = json.loads(raw)
        except (binascii.Error, ValueError):
            raise _bad_token("page_token is not a token this connector issued") from None
        if not isinstance(body, dict) or body.get("v") != _TOKEN_VERSION:
            raise _bad_token("page_token is not a token this connector issued")
        if body.get("q") != query_digest:
            raise _bad_token("page_token belongs to another query, parameters or page size")
        after, offset = body.get("a"), body.get("o", 0)
        if after is not None and not isinstance(after, list):
            raise _bad_token("page_token is malformed")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise _bad_token("page_token is malformed")
        return cls(query_digest, tuple(after) if after is not None else None, offset)


def _bad_token(message: str) -> PermanentError:
    return PermanentError(message, code=ErrorCode.INVALID_REQUEST)


def query_digest(query: str, params: Sequence[Any], page_key: Sequence[str] | None, page_size: int) -> str:
    """What a token is bound to: the statement, its parameters, the key columns and the page size."""
    text = json.dumps([query, list(params), list(page_key or ()), page_size], default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def strip_terminator(query: str) -> str:
    """The query without trailing `;` and blanks, so it can sit inside a subquery.

    A backwards scan, linear in what it strips: the pattern `[\\s;]+$` it replaces was tried from every
    blank of a long run in turn (40,000 spaces mid-query took 3.9 s).
    """
    end = len(query)
    while end and (query[end - 1] == ";" or query[end - 1].isspace()):
        end -= 1
    return query[:end]


def page_sql(
    query: str, param_count: int, page_size: int, key: Sequence[str] | None, token: PageToken | None
) -> str:
    """`SELECT * FROM (<query>) ...` fetching `page_size + 1` rows (the extra one says "there is more").

    Key values of a keyset token are bound after the query's own `param_count` placeholders. The
    query sits on lines of its own so that a trailing `--` comment cannot swallow the wrapper.
    """
    inner = f"SELECT * FROM (\n{strip_terminator(query)}\n) AS {_ALIAS}"  # noqa: S608 - the caller's own read
    limit = f" LIMIT {int(page_size) + 1}"
    if key is None:
        offset = token.offset if token is not None else 0
        return f"{inner}{limit} OFFSET {int(offset)}"
    columns = ", ".join(f"{_ALIAS}.{quote_ident(c)}" for c in key)
    # NULLS FIRST: a row whose key has a NULL is met before any row after it could be skipped by the
    # row comparison (NULL compares as unknown), so the caller learns of it instead of losing it.
    order = ", ".join(f"{_ALIAS}.{quote_ident(c)} NULLS FIRST" for c in key)
    where = ""
    if token is not None and token.after is not None:
        if len(token.after) != len(key):
            raise _bad_token("page_token is malformed")
        marks = ", ".join(f"${param_count + i}" for i in range(1, len(key) + 1))
        where = f" WHERE ({columns}) > ({marks})"
    return f"{inner}{where} ORDER BY {order}{limit}"
