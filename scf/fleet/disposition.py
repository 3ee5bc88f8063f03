"""What happens to a request after a worker ran it: the one pure decision, from the error taxonomy.

Reply now (success, or an error retrying cannot fix), retry later through a delayed-retry queue
(transient or resource trouble that outlasted the in-process retries, while the deadline leaves room),
or dead-letter it (retries exhausted; or a failure nobody is waiting to hear about). The in-process
retries themselves (tenacity, exponential backoff with jitter inside the deadline) ran before this.
A delayed retry waits in `scf.retry.<tier>` (docs/architecture.md), never a `nack(requeue=True)` loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ErrorCategory, ErrorCode, ErrorInfo
from scf.schemas.topology import retry_tier_seconds

#: Answered at once even though retryable: retrying later cannot help, or the caller asked for speed.
FAIL_FAST = frozenset({ErrorCode.CIRCUIT_OPEN, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.IN_PROGRESS})
#: Never dead-lettered: the caller chose this ending.
#: OPERATION_ID_IN_USE: a dead letter would record its failure under the id's rightful owner.
NOT_DEAD = frozenset({ErrorCode.CANCELLED, ErrorCode.OPERATION_ID_IN_USE})


class Kind(StrEnum):
    REPLY = "reply"
    RETRY_LATER = "retry_later"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Disposition:
    kind: Kind
    tier: str | None = None
    reason: DeadReason | None = None


REPLY = Disposition(Kind.REPLY)


def tier_for(delayed_retries: int, error: ErrorInfo) -> tuple[str, float]:
    """Longer waits for later retries and for `resource` errors; never shorter than `retry_after`."""
    tiers = retry_tier_seconds()
    index = min(delayed_retries, len(tiers) - 1)
    if error.category is ErrorCategory.RESOURCE:
        index = min(index + 1, len(tiers) - 1)
    if error.retry_after is not None:
        while index < len(tiers) - 1 and tiers[index][1] < error.retry_after:
            index += 1
    return tiers[index]


def decide(
    error: ErrorInfo | None,
    *,
    delayed_retries: int,
    max_delayed_retries: int,
    remaining: float,
    has_reply_to: bool,
) -> Disposition:
    if error is None or error.code in NOT_DEAD:
        return REPLY
    if error.retryable and (error.code not in FAIL_FAST or not has_reply_to):
        tier, wait = tier_for(delayed_retries, error)
        if delayed_retries < max_delayed_retries and wait < remaining * 0.9:
            return Disposition(Kind.RETRY_LATER, tier=tier)
        if error.code not in FAIL_FAST:
            return Disposition(Kind.DEAD_LETTER, reason=DeadReason.RETRIES_EXHAUSTED)
    if not has_reply_to:  # failed for good and nobody is waiting: keep it where someone will look
        reason = DeadReason.RETRIES_EXHAUSTED if error.retryable else DeadReason.FAILED_WITHOUT_REPLY
        return Disposition(Kind.DEAD_LETTER, reason=reason)
    return REPLY
