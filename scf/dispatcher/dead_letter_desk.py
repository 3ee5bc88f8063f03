"""The dispatcher's dead-letter desk: takes `scf.dead`, answers each caller once, serves `dlq.*`.

For every dead letter: keep it (redacted, the original sealed) in the store, record its failed result under
the operation id, send the caller its one typed error reply, then ack. If the store is unreachable the
message stays in `scf.dead` (nacked back after a pause, never in a tight loop) so nothing is dropped.
Whatever else goes wrong with one message (a body or header nobody could describe), it is stored as a
minimal letter and acked: no message ever keeps a prefetch slot of the desk.
`dlq.replay` re-publishes the original to the queue it came from, with a fresh deadline for a request
that had one; `dlq.purge` deletes.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import BaseModel

from scf.dispatcher.dead_letter_store import MAX_PARSED_BODY, DeadLetterStore, Original, describe, minimal
from scf.fleet import amqp
from scf.fleet.access import carried
from scf.fleet.disposition import GIVE_BACK, SENT
from scf.fleet.metrics import DEAD_LETTERS_TOTAL
from scf.fleet.replies import failed_result, failure_reply
from scf.fleet.settle import Settler, settle
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.control import MessageType
from scf.schemas.dead_letters import DeadLetter, DeadLetterOutcome, DeadLetterQuery, DeadLetterSelection
from scf.schemas.errors import ConnectorError
from scf.schemas.validation import parse_model

log = structlog.get_logger(__name__)

#: How long a dead letter that could not be stored waits before it is offered again.
STORE_RETRY_PAUSE = 2.0


class DeadLetterDesk:
    def __init__(
        self,
        channel: AbstractChannel,
        store: DeadLetterStore,
        state: StateStore,
        *,
        result_ttl: int,
        default_timeout: float,
        delivery_limit: int,
    ) -> None:
        self.channel = channel
        self.settler = Settler(channel)
        self.store = store
        self.state = state
        self.result_ttl = result_ttl
        self.default_timeout = default_timeout
        self.delivery_limit = delivery_limit
        self.handlers = {
            MessageType.DLQ_LIST: self.list_letters,
            MessageType.DLQ_REPLAY: self.replay_letters,
            MessageType.DLQ_PURGE: self.purge_letters,
        }

    async def on_dead(self, message: AbstractIncomingMessage) -> None:
        try:
            letter = await self._keep(message)
        except ConnectorError as exc:
            log.warning("dead_letter_not_stored", code=exc.code, pause=STORE_RETRY_PAUSE)
            await self._offer_again(message)
            return
        except Exception as exc:  # a bug, not an outage: nacked back slowly, never held
            log.error("dead_letter_not_stored", error=repr(exc)[:500], pause=STORE_RETRY_PAUSE)
            await self._offer_again(message)
            return
        DEAD_LETTERS_TOTAL.labels(letter.reason.value).inc()
        log.warning(
            "dead_lettered",
            id=letter.id,
            reason=letter.reason.value,
            code=letter.error.code,
            service_name=letter.service_name,
            operation_id=letter.operation_id,
            attempts=letter.attempts,
        )
        try:
            await self._answer(message, letter)
        except ConnectorError as exc:
            # Stored, not answered: leaving it unacked would store it twice on redelivery, so the
            # stored failed result is what the caller can still fetch by operation id.
            log.warning("dead_letter_reply_failed", id=letter.id, code=exc.code)
        except Exception as exc:  # stored is what matters; an odd message must not stay unacked
            log.warning("dead_letter_reply_failed", id=letter.id, error=repr(exc)[:500])
        await settle(message, SENT, self.settler)  # stored: acked whatever became of the reply

    async def _keep(self, message: AbstractIncomingMessage) -> DeadLetter:
        """Describe and store one message; a message that cannot be described is kept as a minimal letter."""
        now = time.time()
        original = Original(message.body, _properties(message))
        try:
            letter = describe(
                message.body,
                message.headers or {},
                message.type,
                message.message_id,
                now,
                self.delivery_limit,
            )
            await self.store.put(letter, original)
        except ConnectorError:
            raise
        except Exception as exc:
            log.warning("dead_letter_undescribable", error=type(exc).__name__, bytes=len(message.body))
            letter = minimal(message.body, message.message_id, now, type(exc).__name__)
            await self.store.put(letter, original)
        return letter

    async def _offer_again(self, message: AbstractIncomingMessage) -> None:
        await asyncio.sleep(STORE_RETRY_PAUSE)
        await settle(message, GIVE_BACK, self.settler)

    async def _answer(self, message: AbstractIncomingMessage, letter: DeadLetter) -> None:
        """Record the failed result under the operation id (if any) and send the caller its one reply."""
        operation_id = letter.operation_id or (
            letter.id if message.type == MessageType.OPERATION_EXECUTE else None
        )
        if operation_id is not None and letter.service_name is not None:
            result = failed_result(message, letter.error, operation_id)
            await self.state.finish_operation(letter.service_name, result, self.result_ttl)
        await self.settler.reply(message, failure_reply(message, letter.error, operation_id))

    # --- dlq.* ---------------------------------------------------------------------------------------

    async def list_letters(self, body: dict[str, Any]) -> BaseModel:
        return await self.store.page(parse_model(DeadLetterQuery, body, "request"))

    async def purge_letters(self, body: dict[str, Any]) -> BaseModel:
        selection = parse_model(DeadLetterSelection, body, "request")
        chosen = await self._select(selection)
        await self.store.delete([letter.id for letter in chosen])
        return _outcome(selection, chosen, [])

    async def replay_letters(self, body: dict[str, Any]) -> BaseModel:
        selection = parse_model(DeadLetterSelection, body, "request")
        chosen = await self._select(selection)
        failed: list[str] = []
        for letter in chosen:
            try:
                await self._republish(letter)
            except ConnectorError as exc:
                log.warning("dead_letter_replay_failed", id=letter.id, code=exc.code)
                failed.append(letter.id)
                continue
            await self.store.delete([letter.id])
            log.info(
                "dead_letter_replayed", id=letter.id, exchange=letter.exchange, routing_key=letter.routing_key
            )
        return _outcome(selection, chosen, failed)

    async def _select(self, selection: DeadLetterSelection) -> list[DeadLetter]:
        return await self.store.letters(selection, None if selection.all else selection.ids)

    async def _republish(self, letter: DeadLetter) -> None:
        original = await self.store.original(letter.id)
        props = original.properties
        headers = {
            k: v
            for k, v in (props.get("headers") or {}).items()
            if k != "x-death" and not k.startswith(("x-scf-dead", "x-scf-error", "x-scf-attempts"))
        }
        headers[topology.REPLAYED_FROM_HEADER] = letter.id
        headers.pop(topology.DELAYED_RETRIES_HEADER, None)
        user_id, headers = carried(props.get("user_id"), headers)  # runs again as the original's sender
        outgoing = amqp.build_message(
            await _fresh_deadline(original.body, self.default_timeout),
            message_type=props.get("type") or "",
            correlation_id=props.get("correlation_id"),
            reply_to=props.get("reply_to"),
            message_id=props.get("message_id"),
            headers=headers,
        )
        outgoing.user_id = user_id
        exchange = (
            await self.channel.get_exchange(letter.exchange)
            if letter.exchange
            else self.channel.default_exchange
        )
        await amqp.publish(exchange, outgoing, letter.routing_key)


def _properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    return {
        "type": message.type,
        "correlation_id": message.correlation_id,
        "reply_to": message.reply_to,
        "message_id": message.message_id,
        "user_id": message.user_id,
        "headers": dict(message.headers or {}),
    }


async def _fresh_deadline(body: bytes, default_timeout: float) -> bytes:
    """A forwarded request gets a new deadline, its own timeout from now: the old one has passed."""
    if len(body) > MAX_PARSED_BODY:  # parsing and dumping megabytes would stall the shared event loop
        return await asyncio.to_thread(_with_fresh_deadline, body, default_timeout)
    return _with_fresh_deadline(body, default_timeout)


def _with_fresh_deadline(body: bytes, default_timeout: float) -> bytes:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(document, dict) or "deadline" not in document or "request" not in document:
        return body
    request = document["request"] if isinstance(document["request"], dict) else {}
    timeout = request.get("timeout")
    now = time.time()
    document["deadline"] = now + (timeout if isinstance(timeout, int | float) else default_timeout)
    document["accepted_at"] = now
    return json.dumps(document, separators=(",", ":")).encode()


def _outcome(
    selection: DeadLetterSelection, chosen: list[DeadLetter], failed: list[str]
) -> DeadLetterOutcome:
    found = {letter.id for letter in chosen}
    done = [letter.id for letter in chosen if letter.id not in failed]
    missing = [i for i in selection.ids if i not in found]
    return DeadLetterOutcome(done=len(done), ids=done, missing=missing, failed=failed)
