"""The operations: `ingest` (every page, within max_pages/max_records), `preview` (the first N records) and
`validate` (one page: JSON, records at records_path, their fields).

`collect` walks the pages; it stops on an empty or short page, a missing next page, a repeated page,
`max_pages` or `max_records`, and says `truncated` when records were left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from scf.connectors.api.exchange import ApiCall, ApiExchange
from scf.connectors.api.paging import next_page
from scf.connectors.api.records import fields_of, records_at
from scf.connectors.api.settings import same_origin
from scf.connectors.web.policy import safe_url
from scf.schemas.configs.api import PaginationSpec
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Plan:
    """What to fetch: the first call, where the records are, how to page, and the limits."""

    first: ApiCall
    records_path: str
    pagination: PaginationSpec | None
    max_pages: int
    max_records: int


@dataclass(frozen=True)
class Collected:
    records: list[dict[str, Any]]
    pages: int
    truncated: bool


def page_records(reply_status: int, document: Any, path: str) -> list[dict[str, Any]]:
    return [] if reply_status == 204 else records_at(document, path)


async def collect(exchange: ApiExchange, plan: Plan, deadline: float) -> Collected:
    records: list[dict[str, Any]] = []
    call, pages, seen = plan.first, 0, {plan.first.key}
    while True:
        reply = await exchange.send(call, deadline)
        pages += 1
        document = None if reply.status_code == 204 else reply.json()
        found = page_records(reply.status_code, document, plan.records_path)
        records.extend(found)
        following = None
        if plan.pagination is not None:
            following = next_page(
                plan.pagination,
                url=call.url,
                pages_done=pages,
                records_done=len(records),
                page_records=len(found),
                document=document,
                link_headers=reply.headers.get_list("link"),
            )
        if len(records) >= plan.max_records:
            truncated = len(records) > plan.max_records or following is not None
            return Collected(records[: plan.max_records], pages, truncated)
        if following is None:
            return Collected(records, pages, False)
        if pages >= plan.max_pages:
            return Collected(records, pages, True)
        call = call.advance(following)
        if call.credentials and following.url is not None and not same_origin(call.url, plan.first.url):
            raise PermanentError(
                "the API's next page is on another origin; the connector's credentials stay on its own",
                code=ErrorCode.INVALID_DATA,
            )
        if call.key in seen:
            log.warning("api_pagination_loop", url=safe_url(call.url), pages=pages)
            return Collected(records, pages, False)
        seen.add(call.key)


async def run_ingest(exchange: ApiExchange, plan: Plan, deadline: float) -> OperationOutcome:
    collected = await collect(exchange, plan, deadline)
    log.info(
        "api_ingested",
        url=safe_url(plan.first.url),
        pages=collected.pages,
        records=len(collected.records),
        truncated=collected.truncated,
    )
    return OperationOutcome(
        records_processed=len(collected.records),
        result_data={
            "records": collected.records,
            "pages": collected.pages,
            "truncated": collected.truncated,
        },
    )


async def run_preview(exchange: ApiExchange, plan: Plan, deadline: float) -> OperationOutcome:
    collected = await collect(exchange, plan, deadline)
    return OperationOutcome(
        records_processed=len(collected.records),
        result_data={
            "records": collected.records,
            "fields": fields_of(collected.records),
            "pages": collected.pages,
            "truncated": collected.truncated,
        },
    )


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
