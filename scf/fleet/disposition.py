"""What happens to a request after it ran or was refused: the pure decisions, from the policy table.

`decide` is the worker's, for an operation it ran; `answer_once` for a request answered once (the
dispatcher's refusals, connection tests). Both read `scf.schemas.errors.POLICY`; `scf.fleet.settle`
carries the decision out.

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
from scf.schemas.errors import ErrorCategory, ErrorInfo, policy_of
from scf.schemas.topology import retry_tier_seconds


class Kind(StrEnum):
    REPLY = "reply"  # publish the reply (if anyone waits), then ack
    RETRY_LATER = "retry_later"  # park it in a delayed-retry queue, then ack
    DEAD_LETTER = "dead_letter"  # to the dead letters, then ack
    DROP = "drop"  # ack without a word: nobody may hear of it, and no dead letter may record it (counted)
    SENT = "sent"  # what had to go out went out (a forward, the desk's reply): only the ack is left
    GIVE_BACK = "give_back"  # the broker failed an earlier step: hand the message back (nack, requeue)


@dataclass(frozen=True)
class Disposition:
    kind: Kind
    tier: str | None = None
    reason: DeadReason | None = None


REPLY = Disposition(Kind.REPLY)
SENT = Disposition(Kind.SENT)
GIVE_BACK = Disposition(Kind.GIVE_BACK)
DROP = Disposition(Kind.DROP)
#: A failure without a caller to tell is kept as a dead letter, never dropped (docs/resilience.md).
UNHEARD = Disposition(Kind.DEAD_LETTER, reason=DeadReason.FAILED_WITHOUT_REPLY)


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
    if error is None:
        return REPLY
    policy = policy_of(error.code)  # the one lookup: fail_fast and dead_letter from the policy table
    if not policy.dead_letter:
        return REPLY
    if error.retryable and (not policy.fail_fast or not has_reply_to):
        tier, wait = tier_for(delayed_retries, error)
        if delayed_retries < max_delayed_retries and wait < remaining * 0.9:
            return Disposition(Kind.RETRY_LATER, tier=tier)
        if not policy.fail_fast:
            return Disposition(Kind.DEAD_LETTER, reason=DeadReason.RETRIES_EXHAUSTED)
    if not has_reply_to:  # failed for good and nobody is waiting: keep it where someone will look
        reason = DeadReason.RETRIES_EXHAUSTED if error.retryable else DeadReason.FAILED_WITHOUT_REPLY
        return Disposition(Kind.DEAD_LETTER, reason=reason)
    return REPLY


def answer_once(error: ErrorInfo | None, *, has_reply_to: bool) -> Disposition:
    """A request answered once, never retried later (a dispatcher's refusal, a connection test): the
    reply; or, when nobody waits for a failure, a dead letter (a drop where the policy forbids one)."""
    if error is None or has_reply_to:
        return REPLY
    return UNHEARD if policy_of(error.code).dead_letter else DROP
