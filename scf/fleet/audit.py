"""The audit trail: one structured `audit` event per control-plane change and per operation.

Who: the AMQP `user_id` (RabbitMQ checks it against the login) and, for calls made on someone's behalf
(the HTTP gateway), the caller header. Never a secret: bodies are not logged, only names and outcomes.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from scf.fleet.rpc import CALLER_HEADER

_log = structlog.get_logger("scf.audit")


def who(message: AbstractIncomingMessage) -> dict[str, Any]:
    caller = (message.headers or {}).get(CALLER_HEADER)
    return {"user": message.user_id or "unknown", "caller": str(caller) if caller is not None else None}


def audit(message: AbstractIncomingMessage, started: float, **fields: Any) -> None:
    """One audit event for a request taken from the broker."""
    record(**who(message), what=message.type, started=started, **fields)


def record(*, user: str | None, caller: str | None, what: str | None, started: float, **fields: Any) -> None:
    _log.info(
        "audit",
        user=user,
        caller=caller,
        what=what,
        duration=round(time.perf_counter() - started, 6),
        **fields,
    )
