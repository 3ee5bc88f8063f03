"""The one settlement (publish, then ack or give back) and the one failure-reply builder, in milliseconds:
a message double records what was done to it, a settler double what was published."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scf.fleet.disposition import DROP, GIVE_BACK, REPLY, SENT, UNHEARD, Disposition, Kind
from scf.fleet.replies import failure_of, failure_reply, operation_id_of
from scf.fleet.settle import Settler, settle, settle_crashed
from scf.schemas.dead_letters import DeadReason
from scf.schemas.errors import ErrorCategory, ErrorCode, ErrorInfo, PermanentError, SecurityError


class Message:
    """What a handler may do to an incoming message, recorded; `fail` makes settling itself fail."""

    def __init__(self, type: str = "operation.execute", reply_to: str | None = "caller", fail: bool = False):
        self.type = type
        self.reply_to = reply_to
        self.message_id: str | None = "m1"
        self.correlation_id: str | None = "c1"
        self.processed = False
        self.fail = fail
        self.done: list[str] = []

    async def _settle(self, how: str) -> None:
        if self.fail:
            raise ConnectionError("channel closed")
        self.processed = True
        self.done.append(how)

    async def ack(self) -> None:
        await self._settle("ack")

    async def nack(self, requeue: bool = True) -> None:
        await self._settle(f"nack:{requeue}")

    async def reject(self, requeue: bool = False) -> None:
        await self._settle(f"reject:{requeue}")


class Outlet(Settler):
    """Records what would be published; `broken` makes every publish fail as a lost broker does."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__(cast(AbstractChannel, None))
        self.broken = broken
        self.sent: list[tuple[Any, ...]] = []

    def _out(self, *what: Any) -> None:
        if self.broken:
            raise ConnectionError("broker gone")
        self.sent.append(what)

    async def reply(self, message: AbstractIncomingMessage, body: bytes) -> None:
        self._out("reply", body)

    async def retry_later(self, message: AbstractIncomingMessage, tier: str) -> None:
        self._out("retry_later", tier)

    async def dead_letter(
        self, message: AbstractIncomingMessage, reason: DeadReason, error: ErrorInfo
    ) -> None:
        self._out("dead_letter", reason, error.code)


ERROR = PermanentError("bad", code=ErrorCode.INVALID_DATA).to_info()


async def run(
    disposition: Disposition, message: Message | None = None, outlet: Outlet | None = None, **kw: Any
) -> tuple[bool, Message, Outlet]:
    message = message or Message()
    outlet = outlet or Outlet()
    settled = await settle(cast(AbstractIncomingMessage, message), disposition, outlet, **kw)
    return settled, message, outlet


async def test_a_reply_is_published_before_the_ack() -> None:
    settled, message, outlet = await run(REPLY, body=b"{}")
    assert settled and outlet.sent == [("reply", b"{}")] and message.done == ["ack"]


@pytest.mark.parametrize(
    ("disposition", "sent"),
    [
        (Disposition(Kind.RETRY_LATER, tier="10s"), ("retry_later", "10s")),
        (UNHEARD, ("dead_letter", DeadReason.FAILED_WITHOUT_REPLY, "INVALID_DATA")),
    ],
)
async def test_a_moved_message_is_acked_once_its_copy_is_confirmed(
    disposition: Disposition, sent: tuple[Any, ...]
) -> None:
    settled, message, outlet = await run(disposition, error=ERROR)
    assert settled and outlet.sent == [sent] and message.done == ["ack"]


@pytest.mark.parametrize("disposition", [DROP, SENT])
async def test_a_drop_or_a_forward_is_only_acked(disposition: Disposition) -> None:
    settled, message, outlet = await run(disposition, error=ERROR)
    assert settled and outlet.sent == [] and message.done == ["ack"]


@pytest.mark.parametrize("disposition", [REPLY, UNHEARD, Disposition(Kind.RETRY_LATER, tier="1s")])
async def test_when_the_broker_fails_a_publish_the_message_is_given_back(disposition: Disposition) -> None:
    settled, message, _ = await run(disposition, outlet=Outlet(broken=True), body=b"{}", error=ERROR)
    assert not settled and message.done == ["nack:True"]


async def test_an_earlier_step_that_failed_gives_the_message_back() -> None:
    settled, message, outlet = await run(GIVE_BACK)
    assert not settled and outlet.sent == [] and message.done == ["nack:True"]


async def test_the_ack_waits_for_the_work_alongside_even_when_the_reply_failed() -> None:
    order: list[str] = []

    async def store() -> None:
        await asyncio.sleep(0)
        order.append("stored")

    message = Message()
    original = message._settle

    async def recorded(how: str) -> None:
        order.append(how)
        await original(how)

    message._settle = recorded  # type: ignore[method-assign]
    for outlet in (Outlet(), Outlet(broken=True)):
        order.clear()
        message.processed = False
        await run(REPLY, message, outlet, body=b"{}", alongside=asyncio.ensure_future(store()))
        assert order[0] == "stored" and order[1] in ("ack", "nack:True")


async def test_an_early_acked_message_is_not_settled_twice() -> None:
    message = Message()
    message.processed = True
    for disposition in (REPLY, GIVE_BACK):
        await run(disposition, message, body=b"{}")
    assert message.done == []


@pytest.mark.parametrize("disposition", [REPLY, GIVE_BACK])
async def test_a_lost_channel_at_the_ack_or_nack_is_logged_not_raised(disposition: Disposition) -> None:
    settled, message, _ = await run(disposition, Message(fail=True), body=b"{}")
    assert settled is (disposition is REPLY) and message.done == []


async def test_a_crashed_handler_rejects_the_message_to_the_dead_letters() -> None:
    message = Message()
    await settle_crashed(cast(AbstractIncomingMessage, message), "scf.requests", True, ValueError("x"))
    assert message.done == ["reject:False"]
    broken = Message(fail=True)
    await settle_crashed(cast(AbstractIncomingMessage, broken), "scf.dead", False, ValueError("x"))
    assert broken.done == []


# --- the one failure reply -----------------------------------------------------------------------


def reply_of(message: Message, error: Any, operation_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        failure_reply(cast(AbstractIncomingMessage, message), error, operation_id)
    )
    return body


def test_an_operation_fails_under_its_own_id_else_the_message_says_which() -> None:
    message = Message()
    error = PermanentError("bad", code=ErrorCode.INVALID_DATA)
    assert reply_of(message, error, "op_1")["operation_id"] == "op_1"
    assert reply_of(message, error)["operation_id"] == "m1"
    message.message_id = None
    assert reply_of(message, error)["operation_id"] == "c1"
    message.correlation_id = None
    answer = reply_of(message, error)
    assert answer["operation_id"] == "op_unknown"
    assert (answer["status"], answer["error"]["code"]) == ("failed", "INVALID_DATA")
    assert operation_id_of(cast(AbstractIncomingMessage, message), "op_2") == "op_2"


def test_a_control_call_fails_with_a_failed_reply_and_no_operation_id() -> None:
    answer = reply_of(Message(type="connector.list"), PermanentError("bad", code=ErrorCode.INVALID_REQUEST))
    assert "operation_id" not in answer
    assert (answer["status"], answer["error"]["code"]) == ("failed", "INVALID_REQUEST")


def test_a_recorded_security_error_is_told_to_a_control_caller_without_its_detail() -> None:
    recorded = ErrorInfo(category=ErrorCategory.SECURITY, code="PERMISSION_DENIED", message="the secret is x")
    answer = reply_of(Message(type="connector.test"), recorded)
    assert answer["error"]["message"] == SecurityError("").to_info().message


def test_the_error_of_a_failed_reply_is_read_back() -> None:
    body = failure_reply(cast(AbstractIncomingMessage, Message()), PermanentError("bad"))
    error = failure_of(body)
    assert error is not None and error.code == "INVALID_DATA"
    assert failure_of(b'{"status": "success", "operation_id": "x"}') is None
    assert failure_of(b"[1]") is None
