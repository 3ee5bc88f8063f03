"""Pure pagination: the query of the first page and, from a reply, where the next page is (or None).

Styles: `page` (page=1,2,...), `offset` (offset=0,n,...), `cursor` (a value at `cursor_path` in the
body, sent back as `param`, or followed when it is a whole URL) and `link` (RFC 8288 `Link: <...>;
rel="next"`). A page with no records, or shorter than a known page_size, is the last one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from scf.connectors.api.records import value_at
from scf.schemas.configs.api import PaginationSpec
from scf.schemas.errors import ErrorCode, PermanentError

DEFAULT_PARAM = {"page": "page", "offset": "offset", "cursor": "cursor"}
DEFAULT_START = {"page": 1, "offset": 0}
MAX_CURSOR_CHARS = 4096
# `[^<>]`, not `[^>]`: a run of `<` without `>` made every `<` scan to the end (quadratic in the header).
_LINK = re.compile(r"<([^<>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class NextPage:
    """The next page: a whole URL (link, URL cursors), or query parameters to set on the current URL."""

    url: httpx.URL | None = None
    params: dict[str, str] = field(default_factory=dict)


def first_params(spec: PaginationSpec) -> dict[str, str]:
    params: dict[str, str] = {}
    if spec.type in DEFAULT_START:
        start = spec.start if spec.start is not None else DEFAULT_START[spec.type]
        params[spec.param or DEFAULT_PARAM[spec.type]] = str(start)
    if spec.size_param is not None and spec.page_size is not None:
        params[spec.size_param] = str(spec.page_size)
    return params


def link_targets(values: Sequence[str]) -> dict[str, str]:
    """rel -> URL from `Link` header values (the first URL for each rel wins)."""
    targets: dict[str, str] = {}
    for value in values:
        for match in _LINK.finditer(value):
            for rel in _REL.finditer(match.group(2)):
                for name in (rel.group(1) or rel.group(2) or "").lower().split():
                    targets.setdefault(name, match.group(1).strip())
    return targets


def next_page(
    spec: PaginationSpec,
    *,
    url: httpx.URL,
    pages_done: int,
    records_done: int,
    page_records: int,
    document: Any,
    link_headers: Sequence[str],
) -> NextPage | None:
    """Where page `pages_done + 1` is, after a page of `page_records` records; None after the last."""
    if page_records == 0 or (spec.page_size is not None and page_records < spec.page_size):
        return None
    if spec.type in DEFAULT_START:
        start = spec.start if spec.start is not None else DEFAULT_START[spec.type]
        value = start + pages_done if spec.type == "page" else start + records_done
        return NextPage(params={spec.param or DEFAULT_PARAM[spec.type]: str(value)})
    if spec.type == "cursor":
        assert spec.cursor_path is not None  # the model guarantees it
        return _cursor_page(spec, url, value_at(document, spec.cursor_path))
    target = link_targets(link_headers).get("next")
    return None if not target else NextPage(url=_resolve(url, target))


def _cursor_page(spec: PaginationSpec, url: httpx.URL, cursor: Any) -> NextPage | None:
    if cursor is None or cursor == "" or cursor is False:
        return None
    if isinstance(cursor, dict | list):
        raise PermanentError(
            f"cursor_path {spec.cursor_path!r} holds an object or list, not a cursor value",
            code=ErrorCode.INVALID_DATA,
        )
    text = cursor if isinstance(cursor, str) else json.dumps(cursor)  # 42 -> "42", true -> "true"
    if len(text) > MAX_CURSOR_CHARS:
        raise PermanentError("the next-page cursor is implausibly long", code=ErrorCode.INVALID_DATA)
    if text.startswith(("http://", "https://", "/")):
        return NextPage(url=_resolve(url, text))
    return NextPage(params={spec.param or DEFAULT_PARAM["cursor"]: text})


def _resolve(url: httpx.URL, target: str) -> httpx.URL:
    try:
        return url.join(target)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise PermanentError(
            "the API's next-page URL is not a valid URL", code=ErrorCode.INVALID_DATA
        ) from None
