"""The operations: `ingest` (every page, within max_pages/max_records), `preview` (the first N records) and
`validate` (one page: JSON, records at records_path, their fields).

`collect` walks the pages; it stops on an empty or short page, a missing next page, a repeated page,
`max_pages` or `max_records` (at most `page_size`), and says `truncated` when records were left
behind, with a `next_page_token` that resumes there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import structlog

from scf.connectors.api.exchange import ApiCall, ApiExchange
from scf.connectors.api.paging import NextPage, next_page
from scf.connectors.api.records import fields_of, records_at
from scf.connectors.api.settings import same_origin
from scf.connectors.api.tokens import Resume
from scf.connectors.web.bodies import FetchedBody
from scf.connectors.web.policy import safe_url
from scf.schemas.configs.api import PaginationSpec
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Plan:
    """What to fetch: the first call, where the records are, how to page, the limits, where to resume."""

    first: ApiCall
    records_path: str
    pagination: PaginationSpec | None
    max_pages: int
    max_records: int
    resume: Resume | None = None


@dataclass(frozen=True)
class Collected:
    records: list[dict[str, Any]]
    pages: int
    resume: Resume | None = None  # where the records left behind start

    @property
    def truncated(self) -> bool:
        return self.resume is not None


def page_records(reply_status: int, document: Any, path: str) -> list[dict[str, Any]]:
    return [] if reply_status == 204 else records_at(document, path)


def _following(
    plan: Plan, call: ApiCall, reply: FetchedBody, at: Resume
) -> tuple[NextPage | None, list[Any]]:
    """The records of `reply` (the page at `at`) and where the page after it is (None after the last)."""
    document = None if reply.status_code == 204 else reply.json()
    found = page_records(reply.status_code, document, plan.records_path)
    if plan.pagination is None:
        return None, found
    following = next_page(
        plan.pagination,
        url=call.url,
        pages_done=at.pages + 1,
        records_done=at.records + len(found),
        page_records=len(found),
        document=document,
        link_headers=reply.headers.get_list("link"),
    )
    return following, found


async def collect(exchange: ApiExchange, plan: Plan, deadline: float) -> Collected:
    """Pages from `plan.first` (or its resume point) until the last one or a limit; `resume` if cut."""
    records: list[dict[str, Any]] = []
    call, pages, seen = plan.first, 0, {plan.first.key}
    at = plan.resume or Resume(call.url)
    while True:
        reply = await exchange.send(call, deadline)
        pages += 1
        following, found = _following(plan, call, reply, at)
        room, fresh = plan.max_records - len(records), found[at.skip :]
        records.extend(fresh[:room])
        if len(fresh) > room:  # stopped inside this page
            return Collected(records, pages, replace(at, skip=at.skip + room))
        if following is None:
            return Collected(records, pages)
        following_call = call.advance(following)
        at = Resume(following_call.url, 0, at.pages + 1, at.records + len(found))
        if len(records) >= plan.max_records or pages >= plan.max_pages:
            return Collected(records, pages, at)
        if (
            call.credentials
            and following.url is not None
            and not same_origin(following_call.url, plan.first.url)
        ):
            raise PermanentError(
                "the API's next page is on another origin; the connector's credentials stay on its own",
                code=ErrorCode.INVALID_DATA,
            )
        if following_call.key in seen:
            log.warning("api_pagination_loop", url=safe_url(following_call.url), pages=pages)
            return Collected(records, pages)
        seen.add(following_call.key)
        call = following_call


def collected_outcome(
    exchange: ApiExchange, plan: Plan, collected: Collected, **extra: Any
) -> OperationOutcome:
    """The records, pages and truncation of a walk, and the token that resumes where it stopped."""
    token = None if collected.resume is None else exchange.page_token(plan.first, collected.resume)
    return OperationOutcome(
        records_processed=len(collected.records),
        result_data={
            "records": collected.records,
            **extra,
            "pages": collected.pages,
            "truncated": collected.truncated,
        },
        next_page_token=token,
    )


async def run_ingest(exchange: ApiExchange, plan: Plan, deadline: float) -> OperationOutcome:
    collected = await collect(exchange, plan, deadline)
    log.info(
        "api_ingested",
        url=safe_url(plan.first.url),
        pages=collected.pages,
        records=len(collected.records),
        truncated=collected.truncated,
    )
    return collected_outcome(exchange, plan, collected)


async def run_preview(exchange: ApiExchange, plan: Plan, deadline: float) -> OperationOutcome:
    collected = await collect(exchange, plan, deadline)
    return collected_outcome(exchange, plan, collected, fields=fields_of(collected.records))


async def run_validate(exchange: ApiExchange, plan: Plan, deadline: float) -> OperationOutcome:
    """One page. A reply that is not JSON or lacks records is `valid: false` with the problem, no error."""
    reply = await exchange.send(plan.first, deadline)
    problems: list[str] = []
    records: list[dict[str, Any]] = []
    has_next = False
    try:
        document = None if reply.status_code == 204 else reply.json()
        records = page_records(reply.status_code, document, plan.records_path)
        if plan.pagination is not None:
            has_next = (
                next_page(
                    plan.pagination,
                    url=plan.first.url,
                    pages_done=1,
                    records_done=len(records),
                    page_records=len(records),
                    document=document,
                    link_headers=reply.headers.get_list("link"),
                )
                is not None
            )
    except PermanentError as exc:
        problems.append(exc.message)
    return OperationOutcome(
        records_processed=len(records),
        result_data={
            "valid": not problems,
            "problems": problems,
            "status_code": reply.status_code,
            "content_type": reply.headers.get("content-type"),
            "records": len(records),
            "fields": fields_of(records),
            "has_next_page": has_next,
        },
    )
