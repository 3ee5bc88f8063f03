"""The dead-letter store: what `scf.dead` receives, kept in Redis for `dlq.list|replay|purge`.

`describe` (pure) reads why and where from a dead-lettered message: the worker's own `x-scf-*` headers,
or the broker's `x-death` record (delivery limit, expiry, overflow). The store keeps each letter as
redacted JSON (`scf:dead:<id>`), its original body and properties sealed with the fleet's key
(`scf:dead:<id>:sealed`), and an index by time (`scf:dead`), trimmed to `max_entries`, each entry
expiring after `ttl` seconds. Anyone may publish to `scf.dlx`, so describing is bounded: a body over
`MAX_PARSED_BODY` is never parsed (shown as its size), header values are cut, and `minimal` builds a
letter from nothing but safe facts when describing fails anyway.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scf.fleet import keys
from scf.fleet.state_errors import redis_errors
from scf.schemas import topology
from scf.schemas.connection import public_request_body
from scf.schemas.dead_letters import DeadLetter, DeadLetterFilter, DeadLetterPage, DeadLetterQuery, DeadReason
from scf.schemas.errors import ErrorCode, ErrorInfo, PermanentError, TransientError
from scf.schemas.secrets import MASK, encodable, mask_url, redact

if TYPE_CHECKING:
    from scf.fleet.state import StateStore

MAX_SHOWN_BODY = 16 * 1024
#: A body larger than this is not parsed nor scanned: the letter shows its size (the original is sealed).
MAX_PARSED_BODY = 256 * 1024
#: Header values (and the ids read from a body) are shown cut to this many characters.
MAX_SHOWN_HEADER = 1024
#: Headers whose values are shown: the fleet's own and the broker's. Any other header may be a caller's
#: credential under a name nobody can guess, so its value is masked.
SHOWN_HEADER_PREFIXES = ("x-scf-", "x-first-death-", "x-last-death-", "x-delivery-count")
#: AMQP tables nest; deeper ones are shown and sealed as a marker (no real header nests this deep).
MAX_HEADER_DEPTH = 16


@dataclass(frozen=True)
class Original:
    """What a replay needs: the body and properties exactly as they were (sealed at rest)."""

    body: bytes
    properties: dict[str, Any]


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _broker_death(headers: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, int]:
    """(reason, exchange, routing key, count) of the broker's latest `x-death` record."""
    deaths = headers.get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], Mapping):
        return None, None, None, 0
    latest = deaths[0]
    keys_ = latest.get("routing-keys")
    key = _text(keys_[0]) if isinstance(keys_, list) and keys_ else None
    count = latest.get("count")
    return (
        _text(latest.get("reason")),
        _text(latest.get("exchange")),
        key,
        count if isinstance(count, int) else 0,
    )


def _reason(raw: str | None) -> DeadReason:
    try:
        return DeadReason(raw or "rejected")
    except ValueError:
        return DeadReason.REJECTED


def _broker_error(reason: DeadReason, deliveries: int) -> ErrorInfo:
    if reason is DeadReason.EXPIRED:
        return TransientError(
            "the request's deadline passed while it waited in a queue", code=ErrorCode.DEADLINE_EXCEEDED
        ).to_info()
    if reason is DeadReason.DELIVERY_LIMIT:
        message = (
            f"the request was delivered {deliveries or 'too many'} times without completing (the workers "
            "running it stopped or crashed); it is kept as a dead letter"
        )
    else:
        message = f"the broker dead-lettered the request ({reason.value}); it is kept as a dead letter"
    return PermanentError(message, code=ErrorCode.DEAD_LETTERED).to_info()


def _recorded_error(headers: Mapping[str, Any]) -> ErrorInfo | None:
    """The error a worker recorded; a header that is not one (anyone may publish to `scf.dlx`) is ignored."""
    raw = _text(headers.get(topology.DEAD_ERROR_HEADER))
    if not raw:
        return None
    try:
        return ErrorInfo.model_validate_json(raw)
    except ValueError:
        return None


def _parsed_body(body: bytes) -> Any:
    if len(body) > MAX_PARSED_BODY:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # nested past the recursion limit: as unreadable as bad JSON
        return None


def describe(
    body: bytes,
    headers: Mapping[str, Any],
    message_type: str | None,
    message_id: str | None,
    now: float,
    delivery_limit: int = 0,
) -> DeadLetter:
    """A dead letter from one message of `scf.dead`, secrets redacted (pure).

    The broker does not say how often it delivered a message it dead-lettered at the delivery limit;
    that many is the queue's limit plus the one delivery that went over it.
    """
    parsed = _parsed_body(body)
    request = parsed.get("request", parsed) if isinstance(parsed, dict) else {}
    request = request if isinstance(request, dict) else {}
    broker_reason, broker_exchange, broker_key, deliveries = _broker_death(headers)
    reason = _reason(_text(headers.get(topology.DEAD_REASON_HEADER)) or broker_reason)
    error = _recorded_error(headers) or _broker_error(reason, deliveries)
    attempts = headers.get(topology.ATTEMPTS_HEADER)
    if not isinstance(attempts, int):
        attempts = delivery_limit + 1 if reason is DeadReason.DELIVERY_LIMIT else max(deliveries, 1)
    service_type = parsed.get("service_type") if isinstance(parsed, dict) else None
    shown_headers = {
        k: v if k.lower().startswith(SHOWN_HEADER_PREFIXES) or v in (None, "", b"") else MASK
        for k, v in headers.items()
        if k != "x-death"
    }
    return DeadLetter(
        id=f"dl_{uuid.uuid4().hex}",
        reason=reason,
        error=error,
        attempts=attempts,
        message_type=message_type,
        service_name=_str_or_none(request.get("service_name")),
        service_type=_str_or_none(service_type),
        operation_id=_str_or_none(request.get("operation_id")) or _str_or_none(message_id),
        exchange=_shown(_text(headers.get(topology.ORIGIN_EXCHANGE_HEADER)) or broker_exchange or ""),
        routing_key=_shown(_text(headers.get(topology.ORIGIN_ROUTING_KEY_HEADER)) or broker_key or ""),
        dead_lettered_at=now,
        headers=redact(_plain(shown_headers, limit=MAX_SHOWN_HEADER)),
        body=_shown_body(body, parsed),
    )


def minimal(body: bytes, message_id: str | None, now: float, reason: str) -> DeadLetter:
    """A letter from safe facts only (size, id, when), for a message `describe` could not read."""
    return DeadLetter(
        id=f"dl_{uuid.uuid4().hex}",
        reason=DeadReason.REJECTED,
        error=PermanentError(
            f"the dead letter could not be described ({reason}); its original is kept sealed",
            code=ErrorCode.DEAD_LETTERED,
        ).to_info(),
        attempts=1,
        message_type=None,
        service_name=None,
        service_type=None,
        operation_id=_str_or_none(message_id),
        exchange="",
        routing_key="",
        dead_lettered_at=now,
        headers={},
        body={"truncated": True, "bytes": len(body)},
    )


def _shown_body(body: bytes, parsed: Any) -> Any:
    """The body as callers may see it: redacted, and only if small; otherwise its size."""
    too_big = {"truncated": True, "bytes": len(body)}
    if len(body) > MAX_PARSED_BODY:
        return too_big
    if parsed is None:
        return mask_url(encodable(body.decode("utf-8", "replace")), limit=MAX_SHOWN_BODY)
    shown = public_request_body(parsed)  # a connector config masked by its type's model
    if len(json.dumps(shown, default=str)) > MAX_SHOWN_BODY:
        return too_big
    return shown


def _shown(text: str) -> str:
    return encodable(mask_url(text, limit=MAX_SHOWN_HEADER))


def _str_or_none(value: Any) -> str | None:
    return _shown(value) if isinstance(value, str) else None


def _plain(value: Any, *, limit: int | None = None, depth: int = 0) -> Any:
    """AMQP header values made JSON-safe (bytes, datetimes and nested tables); `limit` cuts strings."""
    if depth > MAX_HEADER_DEPTH:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, limit=limit, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, limit=limit, depth=depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if limit is None else mask_url(value, limit=limit)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


class DeadLetterStore:
    def __init__(self, state: StateStore, *, ttl: int, max_entries: int) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own
        self.box = state.box  # the originals are sealed with the fleet's key
        self.ttl = ttl
        self.max_entries = max_entries

    async def put(self, letter: DeadLetter, original: Original) -> None:
        shown = letter.model_dump_json()
        sealed = (
            # Sealing megabytes (base64, JSON, Fernet) takes long enough to stall the shared event loop.
            await asyncio.to_thread(self._seal, original)
            if len(original.body) > MAX_PARSED_BODY
            else self._seal(original)
        )
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.dead_letter(letter.id), shown, ex=self.ttl)
            pipe.set(keys.dead_letter_sealed(letter.id), sealed, ex=self.ttl)
            pipe.zadd(keys.DEAD_LETTERS_INDEX, {letter.id: letter.dead_lettered_at})
            await pipe.execute()
        await self._trim()

    def _seal(self, original: Original) -> str:
        return self.box.seal(
            {"body": base64.b64encode(original.body).decode(), "properties": _plain(original.properties)}
        )

    async def _trim(self) -> None:
        async with redis_errors():
            expired = await self.redis.zrangebyscore(keys.DEAD_LETTERS_INDEX, 0, time.time() - self.ttl)
            extra = await self.redis.zcard(keys.DEAD_LETTERS_INDEX) - self.max_entries
            oldest = await self.redis.zrange(keys.DEAD_LETTERS_INDEX, 0, extra - 1) if extra > 0 else []
            if expired or oldest:
                await self.delete([*expired, *oldest])

    async def letters(self, wanted: DeadLetterFilter, ids: list[str] | None = None) -> list[DeadLetter]:
        """Newest first; `ids` restricts to those (missing ones are left out)."""
        async with redis_errors():
            if ids is None:
                newest = await self.redis.zrevrange(keys.DEAD_LETTERS_INDEX, 0, self.max_entries - 1)
                ids = [_text(i) or "" for i in newest]
            raw = await self.redis.mget([keys.dead_letter(i) for i in ids]) if ids else []
        letters = [DeadLetter.model_validate_json(r) for r in raw if r is not None]
        return [letter for letter in letters if wanted.matches(letter)]

    async def page(self, query: DeadLetterQuery) -> DeadLetterPage:
        found = await self.letters(query)
        return DeadLetterPage(dead_letters=found[query.offset : query.offset + query.limit], total=len(found))

    async def original(self, letter_id: str) -> Original:
        async with redis_errors():
            sealed = await self.redis.get(keys.dead_letter_sealed(letter_id))
        if sealed is None:
            raise PermanentError(f"dead letter {letter_id!r} is gone", code=ErrorCode.NOT_FOUND)
        document = self.box.open(_text(sealed) or "")
        return Original(base64.b64decode(document["body"]), dict(document["properties"]))

    async def delete(self, ids: list[str]) -> int:
        if not ids:
            return 0
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.DEAD_LETTERS_INDEX, *ids)
            for letter_id in ids:
                pipe.delete(keys.dead_letter(letter_id), keys.dead_letter_sealed(letter_id))
            results = await pipe.execute()
        return int(results[0])


__all__ = ["DeadLetterStore", "Original", "describe", "minimal"]
