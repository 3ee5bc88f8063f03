"""Read operations: `search` (one page, or paged with search_after in a point in time), `aggregate`, `count`.

A paged search opens a point in time on its first page and carries it in the page token; the last page
(fewer hits than `size`) closes it, and an abandoned one expires after `keep_alive`. Hits keep the
cluster's names (`_id`, `_source`, ...); scores are passed through, never relied upon for paging.
"""

from __future__ import annotations

from typing import Any

import structlog
from elasticsearch import AsyncElasticsearch

from scf.connectors.elasticsearch.paging import (
    MAX_PAGE_TOKEN_CHARS,
    PageToken,
    decode_page_token,
    encode_page_token,
    search_fingerprint,
)
from scf.connectors.elasticsearch.requests import AggregateParameters, CountParameters, SearchParameters
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

log = structlog.get_logger(__name__)

_HIT_KEYS = ("_index", "_id", "_score", "_source", "highlight", "sort")
#: Without a sort of its own, a paged search orders by relevance; the PIT adds the tiebreaker.
DEFAULT_PAGED_SORT: list[dict[str, Any]] = [{"_score": {"order": "desc"}}]


async def run_search(
    es: AsyncElasticsearch, target: str, params: SearchParameters, page_token: str | None
) -> OperationOutcome:
    body = params.search_body()
    if params.paginate or page_token is not None:
        return await _search_page(es, target, params, body, page_token)
    reply = await es.search(index=target, body={**body, "from": params.from_, "size": params.size})
    return hits_outcome(reply.body, None)


async def _search_page(
    es: AsyncElasticsearch,
    target: str,
    params: SearchParameters,
    body: dict[str, Any],
    page_token: str | None,
) -> OperationOutcome:
    fingerprint = search_fingerprint(target, body)
    search_after: list[Any] | None = None
    if page_token is not None:
        token = decode_page_token(page_token, fingerprint)
        pit_id, search_after = token.pit_id, list(token.search_after)
    else:
        opened = await es.open_point_in_time(index=target, keep_alive=params.keep_alive)
        pit_id = str(opened.body["id"])
    request = {
        **body,
        "sort": body.get("sort") or DEFAULT_PAGED_SORT,
        "size": params.size,
        "pit": {"id": pit_id, "keep_alive": params.keep_alive},
    }
    if search_after is not None:
        request["search_after"] = search_after
    try:
        reply = await es.search(body=request)
    except Exception:
        if page_token is None:  # nobody will ever hold a token for this point in time
            await close_pit(es, pit_id)
        raise
    pit_id = str(reply.body.get("pit_id") or pit_id)
    hits = reply.body.get("hits", {}).get("hits") or []
    last_sort = hits[-1].get("sort") if hits else None
    if len(hits) < params.size or not last_sort:
        await close_pit(es, pit_id)
        return hits_outcome(reply.body, None)
    next_token = encode_page_token(PageToken(pit_id, tuple(last_sort), fingerprint))
    if len(next_token) > MAX_PAGE_TOKEN_CHARS:
        await close_pit(es, pit_id)
        raise PermanentError(
            "this search's paging state does not fit in a page token (too many shards); page with from/size",
            code=ErrorCode.LIMIT_EXCEEDED,
        )
    return hits_outcome(reply.body, next_token)


async def close_pit(es: AsyncElasticsearch, pit_id: str) -> None:
    """Release a point in time; a failure only costs memory until its keep_alive ends."""
    try:
        await es.close_point_in_time(id=pit_id)
    except Exception as exc:
        log.info("elasticsearch_pit_close_failed", error=type(exc).__name__)


def hits_outcome(body: dict[str, Any], next_page_token: str | None) -> OperationOutcome:
    """The reply of a search: total (and whether it is exact), the hits, partial-result flags."""
    hits_section = body.get("hits") or {}
    total, relation = total_hits(hits_section.get("total"))
    hits = [{k: h[k] for k in _HIT_KEYS if k in h} for h in hits_section.get("hits") or ()]
    shards = body.get("_shards") or {}
    return OperationOutcome(
        records_processed=len(hits),
        next_page_token=next_page_token,
        result_data={
            "total": total,
            "total_relation": relation,
            "max_score": hits_section.get("max_score"),
            "hits": hits,
            "timed_out": bool(body.get("timed_out")),
            "failed_shards": int(shards.get("failed") or 0),
        },
    )


def total_hits(total: Any) -> tuple[int | None, str | None]:
    """`hits.total` as (value, relation); `gte` means at least that many (track_total_hits limit)."""
    if isinstance(total, dict):
        return int(total.get("value") or 0), str(total.get("relation") or "eq")
    if isinstance(total, int):
        return total, "eq"
    return None, None


async def run_aggregate(es: AsyncElasticsearch, target: str, params: AggregateParameters) -> OperationOutcome:
    body: dict[str, Any] = {"size": 0, "aggregations": params.aggs}
    if params.query is not None:
        body["query"] = params.query
    reply = await es.search(index=target, body=body)
    total, relation = total_hits((reply.body.get("hits") or {}).get("total"))
    return OperationOutcome(
        records_processed=total or 0,
        result_data={
            "aggregations": reply.body.get("aggregations") or {},
            "total": total,
            "total_relation": relation,
        },
    )


async def run_count(es: AsyncElasticsearch, target: str, params: CountParameters) -> OperationOutcome:
    reply = await es.count(index=target, query=params.query)
    count = int(reply.body.get("count") or 0)
    return OperationOutcome(records_processed=count, result_data={"count": count})
