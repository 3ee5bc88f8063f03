"""HTTP routes for dead letters and cancellation: the same `dlq.*` and `operation.cancel` calls."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request

from scf.fleet.client import FleetClient
from scf.schemas.connection import SERVICE_NAME_PATTERN
from scf.schemas.control import CancelRequested
from scf.schemas.dead_letters import (
    MAX_DLQ_PAGE,
    DeadLetterOutcome,
    DeadLetterPage,
    DeadLetterSelection,
    DeadReason,
)
from scf.schemas.operation import OPERATION_ID_PATTERN

TAGS: list[str | Enum] = ["dead letters"]


def install(app: FastAPI, errors: dict[int | str, dict[str, Any]]) -> None:
    def fleet(request: Request) -> FleetClient:
        client: FleetClient = request.app.state.fleet
        return client

    @app.post(
        "/operations/{operation_id}/cancel",
        response_model=CancelRequested,
        responses=errors,
        status_code=202,
        tags=["operations"],
    )
    async def cancel(
        operation_id: Annotated[str, Path(pattern=OPERATION_ID_PATTERN, max_length=128)], request: Request
    ) -> CancelRequested:
        """Not run if still queued; a running operation stops at its next batch."""
        return await fleet(request).cancel_operation(operation_id)

    @app.get("/dead-letters", response_model=DeadLetterPage, responses=errors, tags=TAGS)
    async def dead_letters(
        request: Request,
        service_name: Annotated[str | None, Query(pattern=SERVICE_NAME_PATTERN, max_length=128)] = None,
        reason: DeadReason | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_DLQ_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> DeadLetterPage:
        query: dict[str, Any] = {"limit": limit, "offset": offset}
        query.update({k: v for k, v in (("service_name", service_name), ("reason", reason)) if v})
        return await fleet(request).dead_letters(**query)

    @app.post(
        "/dead-letters/replay", response_model=DeadLetterOutcome, responses=errors, tags=["dead letters"]
    )
    async def replay(selection: DeadLetterSelection, request: Request) -> DeadLetterOutcome:
        """Re-publish to the queue each came from, with a fresh deadline; replayed ones leave the store."""
        return await fleet(request).replay_dead_letters(**selection.model_dump(exclude_none=True))

    @app.post(
        "/dead-letters/purge", response_model=DeadLetterOutcome, responses=errors, tags=["dead letters"]
    )
    async def purge(selection: DeadLetterSelection, request: Request) -> DeadLetterOutcome:
        return await fleet(request).purge_dead_letters(**selection.model_dump(exclude_none=True))
