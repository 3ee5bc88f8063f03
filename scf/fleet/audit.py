"""The audit trail: one structured `audit` event per control-plane change and per operation.

Who: the AMQP `user_id`, which RabbitMQ checks against the connection's login, so it cannot be forged.
The caller header (`x-scf-caller`, set by the HTTP gateway for its callers) is believed only when the
message comes from a configured trusted forwarder (`SCF_TRUSTED_FORWARDERS`, AMQP user names); from
anyone else it is recorded as `claimed_caller`, never as `caller`. Never a secret: bodies are not logged.

Control-plane requests are all audited. Operations are audited by `audit_operation`: every failure, and
one success in `1 / SCF_AUDIT_SAMPLE` (1.0, the default, keeps every line; 0 keeps failures only), so a
busy data plane need not pay for a log line per call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from scf.fleet.access import PRINCIPAL_HEADER, VIA_HEADER
from scf.fleet.rpc import CALLER_HEADER

_log = structlog.get_logger("scf.audit")

#: A header value is a claim, so it is cut short: a hostile one must not bloat every audit line.
MAX_CALLER_CHARS = 200

_trusted: frozenset[str] = frozenset()
_every = 1  # audit one successful operation in this many (0: none)
_skipped = 0


def trust_forwarders(users: Iterable[str]) -> None:
    """The AMQP users whose caller header is believed (the gateway's, typically)."""
    global _trusted
    _trusted = frozenset(u for u in users if u)


def sample_operations(rate: float) -> None:
    """Audit this share (0..1) of successful operations, evenly spread (one in round(1/rate))."""
    global _every, _skipped
    _every = 0 if rate <= 0 else max(1, round(1 / min(rate, 1.0)))
    _skipped = 0


def audit_operation(message: AbstractIncomingMessage, started: float, *, failed: bool, **fields: Any) -> None:
    """The audit event of one operation: always for a failure, else as sampled."""
    global _skipped
    if not failed:
        if _every == 0:
            return
        _skipped += 1
        if _skipped < _every:
            return
        _skipped = 0
    audit(message, started, **fields)


def who(message: AbstractIncomingMessage) -> dict[str, Any]:
    """`user` (broker-verified), `principal` (the one the request acts for: named by a trusted
    forwarder, else the user), `caller` (only from a trusted forwarder) and `claimed_caller`."""
    user = message.user_id or None
    headers = message.headers or {}
    raw = headers.get(CALLER_HEADER)
    claimed = _shown(raw) if raw is not None else None
    if user is not None and user in _trusted:
        named = headers.get(PRINCIPAL_HEADER)
        via = headers.get(VIA_HEADER)
        principal = f"{_shown(via or 'forwarded')}:{_shown(named)}" if named is not None else f"amqp:{user}"
        return {"user": user, "caller": claimed, "principal": principal}
    found: dict[str, Any] = {
        "user": user or "unknown",
        "caller": None,
        "principal": f"amqp:{user}" if user else None,
    }
    if claimed is not None:
        found["claimed_caller"] = claimed
    return found


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


def _shown(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_CALLER_CHARS]
