"""Dead letters: what the fleet keeps of a message it gave up on, and the `dlq.*` control bodies.

A dead letter is inspectable (`dlq.list`), replayable (`dlq.replay`, re-published to the queue it came
from) and removable (`dlq.purge`). What callers see is redacted; the original body is kept sealed (Fernet)
for replay only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scf.schemas.connection import SERVICE_NAME_PATTERN
from scf.schemas.errors import ErrorInfo

MAX_DLQ_PAGE = 1_000
#: The ids the store gives out: anything else cannot name a dead letter (nor another Redis key).
DeadLetterId = Annotated[str, Field(pattern=r"^dl_[0-9a-f]{32}$")]


class DeadReason(StrEnum):
    DELIVERY_LIMIT = "delivery_limit"  # delivered again and again without settling: workers died on it
    EXPIRED = "expired"  # its deadline passed while it waited in a queue
    RETRIES_EXHAUSTED = "retries_exhausted"  # transient failures outlasted the retries and the deadline
    FAILED_WITHOUT_REPLY = "failed_without_reply"  # failed for good, and nobody to tell
    REJECTED = "rejected"  # refused by the broker or a consumer
    OVERFLOW = "maxlen"  # pushed out of a full queue


class DeadLetter(BaseModel):
    id: str
    reason: DeadReason
    error: ErrorInfo
    attempts: int = 0
    message_type: str | None = None
    service_name: str | None = None
    service_type: str | None = None
    operation_id: str | None = None
    exchange: str
    routing_key: str
    dead_lettered_at: float
    headers: dict[str, Any] = Field(default_factory=dict, description="original headers, secrets redacted")
    body: Any = Field(default=None, description="the original body, secrets redacted (may be truncated)")
    replays: int = 0


class DeadLetterFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_name: str | None = Field(default=None, pattern=SERVICE_NAME_PATTERN)
    reason: DeadReason | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (self.service_name is None or letter.service_name == self.service_name) and (
            self.reason is None or letter.reason == self.reason
        )


class DeadLetterQuery(DeadLetterFilter):
    limit: int = Field(default=100, ge=1, le=MAX_DLQ_PAGE)
    offset: int = Field(default=0, ge=0)


class DeadLetterSelection(DeadLetterFilter):
    """`ids`, or `all: true` (narrowed by the filter fields): never everything by accident."""

    # the rule `_something_selected` enforces, declared for OpenAPI/AsyncAPI readers and generators
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["ids"], "properties": {"ids": {"minItems": 1}, "all": {"const": False}}},
                {"required": ["all"], "properties": {"all": {"const": True}, "ids": {"maxItems": 0}}},
            ]
        }
    )

    ids: list[DeadLetterId] = Field(default_factory=list, max_length=MAX_DLQ_PAGE)
    all: bool = Field(default=False, strict=True)  # `0`/`"no"` are not booleans: refused

    @model_validator(mode="after")
    def _something_selected(self) -> DeadLetterSelection:
        if bool(self.ids) == self.all:
            raise ValueError("give either ids or all: true")
        return self


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetter]
    total: int


class DeadLetterOutcome(BaseModel):
    """How many were replayed or purged; `missing` ids were not (or no longer) in the store."""

    done: int
    ids: list[str]
    missing: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
