"""The client's fast path (`scf.fleet.fast_path`) on doubles of our own: no broker, milliseconds.

What a route is learned from and when, what is published where, and when a call falls back to the
dispatcher. `tests/integration/test_fast_path.py` covers the same through a real broker and fleet.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from scf.fleet import amqp
from scf.fleet.fast_path import FastPath, envelope_body
from scf.fleet.rpc import RpcClient
from scf.fleet.settings import MAX_REQUEST_BYTES
from scf.schemas import topology
from scf.schemas.control import ConnectorStatus, HealthState
from scf.schemas.errors import ConnectorError, ErrorCode, ResourceError
from scf.schemas.operation import OperationEnvelope, OperationRequest, OperationResult


class Queue:
    async def bind(self, exchange: object, routing_key: str) -> None:
        pass

    async def consume(self, callback: object, no_ack: bool = False) -> None:
        pass


class Channel:
    is_closed = False

    async def get_exchange(self, name: str, ensure: bool = False) -> object:
        return name

    async def declare_queue(self, name: str, **_: Any) -> Queue:
        return Queue()

    async def close(self) -> None:
        self.is_closed = True


class Connection:
    """What `RegistryWatch` uses of the client's connection; `fail` makes opening a channel fail."""

    def __init__(self, *, fail: bool = False) -> None:
        self.is_closed = False
        self.fail = fail
        self.channels_opened = 0
        self.reconnect_callbacks: set[object] = set()

    async def channel(self) -> Channel:
        self.channels_opened += 1
        if self.fail:
            raise ConnectionError("broker away")
        return Channel()


class Rpc:
    """What the fast path uses of `RpcClient`: `connected`, `connection` and `call_raw`."""

    def __init__(self, connection: Connection, reply: dict[str, Any] | BaseException | None = None) -> None:
        self.connected = True
        self.connection = connection
        self.reply = reply
        self.published: list[dict[str, Any]] = []

    async def call_raw(self, message_type: str, body: bytes, **options: Any) -> dict[str, Any]:
        self.published.append({"type": message_type, "body": amqp.decode(body), **options})
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply or {"operation_id": "op-1", "status": "success"}


class Statuses:
    def __init__(self, *, paused: bool = False, live_workers: int = 1) -> None:
        self.asked: list[str] = []
        self.paused = paused
        self.live_workers = live_workers

    async def __call__(self, name: str) -> ConnectorStatus:
        self.asked.append(name)
        return ConnectorStatus(
            service_name=name,
            service_type="postgresql",
            version=7,
            paused=self.paused,
            health=HealthState(),
            live_workers=self.live_workers,
        )


def fast_path(rpc: Rpc, statuses: Statuses, *, enabled: bool = True) -> FastPath:
    return FastPath(cast(RpcClient, rpc), statuses, enabled=enabled)


async def settle_background(fast: FastPath) -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def request(**fields: Any) -> OperationRequest:
    values: dict[str, Any] = {"service_name": "db", "operation": "query", "operation_id": "op-1", **fields}
    return OperationRequest.model_validate(values)


OK = OperationResult(operation_id="op-0", status="success")


async def learned(rpc: Rpc | None = None, statuses: Statuses | None = None) -> FastPath:
    fast = fast_path(rpc or Rpc(Connection()), statuses or Statuses())
    fast.settled("db", OK)
    await settle_background(fast)
    return fast


async def test_a_dispatcher_answer_teaches_the_route_in_the_background() -> None:
    statuses = Statuses()
    fast = fast_path(Rpc(Connection()), statuses)
    assert fast.route("db") is None  # nothing known, and no watch yet

    fast.settled("db", OK)
    await settle_background(fast)

    route = fast.route("db")
    assert route is not None
    assert (route.service_type, route.version) == ("postgresql", 7)
    assert statuses.asked == ["db"]


@pytest.mark.parametrize(
    "code", [ErrorCode.CONNECTOR_NOT_FOUND, ErrorCode.CONNECTOR_PAUSED, ErrorCode.NO_WORKER]
)
async def test_an_answer_that_says_the_name_cannot_be_routed_teaches_nothing(code: ErrorCode) -> None:
    statuses = Statuses()
    fast = fast_path(Rpc(Connection()), statuses)
    fast.settled("db", OperationResult.failed("op-0", ConnectorError("no", code=code)))
    await settle_background(fast)

    assert statuses.asked == []
    assert fast.route("db") is None


async def test_a_disabled_fast_path_never_learns_nor_routes() -> None:
    statuses = Statuses()
    fast = fast_path(Rpc(Connection()), statuses, enabled=False)
    fast.settled("db", OK)
    await settle_background(fast)

    assert statuses.asked == []
    assert fast.route("db") is None


async def test_paused_connectors_and_types_without_workers_are_not_routed() -> None:
    assert (await learned(statuses=Statuses(paused=True))).route("db") is None
    assert (await learned(statuses=Statuses(live_workers=0))).route("db") is None


async def test_a_watch_that_cannot_start_keeps_calls_on_the_dispatcher_for_a_while() -> None:
    connection = Connection(fail=True)
    statuses = Statuses()
    fast = fast_path(Rpc(connection), statuses)
    fast.settled("db", OK)
    await settle_background(fast)
    fast.settled("db", OK)
    await settle_background(fast)

    assert fast.route("db") is None
    assert statuses.asked == []  # no route is read while no event could drop it
    assert connection.channels_opened == 1  # not retried within WATCH_RETRY_SECONDS


async def test_the_envelope_goes_straight_to_the_types_queue() -> None:
    rpc = Rpc(Connection())
    fast = await learned(rpc)
    route = fast.route("db")
    assert route is not None

    result = await fast.execute(
        request(timeout=12), route, timeout=30, wait=17, on_progress=None, started=0.0
    )

    assert result is not None and result.status == "success"
    assert fast.counts.fast == 1
    [sent] = rpc.published
    assert (sent["exchange"], sent["routing_key"]) == (topology.OPS_EXCHANGE, "postgresql")
    assert sent["message_id"] == "op-1"
    assert sent["timeout"] == 17
    assert 11 < sent["expiration"] <= 12  # the request's own deadline, not the client's default
    assert sent["body"]["service_type"] == "postgresql"
    assert sent["body"]["connector_version"] == 7
    assert amqp.FORWARDED_AT_HEADER in sent["headers"]


async def test_a_request_without_a_timeout_gets_the_clients_default_deadline() -> None:
    rpc = Rpc(Connection())
    fast = await learned(rpc)
    route = fast.route("db")
    assert route is not None

    await fast.execute(request(), route, timeout=30, wait=35, on_progress=None, started=0.0)

    assert 29 < rpc.published[0]["expiration"] <= 30


async def test_a_body_the_dispatcher_would_refuse_is_left_to_the_dispatcher() -> None:
    rpc = Rpc(Connection())
    fast = await learned(rpc)
    route = fast.route("db")
    assert route is not None
    deep: dict[str, Any] = {}
    for _ in range(70):
        deep = {"x": deep}

    sent = await fast.execute(request(data=deep), route, timeout=30, wait=35, on_progress=None, started=0.0)

    assert sent is None
    assert rpc.published == []


async def test_a_returned_publish_drops_the_route_and_falls_back() -> None:
    rpc = Rpc(Connection(), reply=amqp.UnroutableError("no queue", code=ErrorCode.NO_WORKER))
    fast = await learned(rpc)
    route = fast.route("db")
    assert route is not None

    sent = await fast.execute(request(), route, timeout=30, wait=35, on_progress=None, started=0.0)

    assert sent is None
    assert fast.counts.fell_back == 1
    assert fast.routes.get("db", 0.0) is None


async def test_a_refused_publish_is_the_callers_answer() -> None:
    rpc = Rpc(Connection(), reply=ResourceError("full", code=ErrorCode.QUEUE_FULL))
    fast = await learned(rpc)
    route = fast.route("db")
    assert route is not None

    result = await fast.execute(request(), route, timeout=30, wait=35, on_progress=None, started=0.0)

    assert result is not None and result.error is not None
    assert result.error.code == ErrorCode.QUEUE_FULL
    assert fast.counts.fast == 1


async def test_a_worker_that_no_longer_knows_the_connector_drops_the_route() -> None:
    refusal = OperationResult.failed("op-1", ConnectorError("gone", code=ErrorCode.CONNECTOR_NOT_FOUND))
    rpc = Rpc(Connection(), reply=refusal.model_dump(mode="json"))
    fast = await learned(rpc)
    route = fast.route("db")
    assert route is not None

    result = await fast.execute(request(), route, timeout=30, wait=35, on_progress=None, started=0.0)

    assert result is not None and result.error is not None
    assert fast.routes.get("db", 0.0) is None


def test_bodies_the_dispatcher_would_refuse_get_no_envelope() -> None:
    def body(**fields: Any) -> bytes | None:
        envelope = OperationEnvelope(
            request=request(**fields),
            service_type="postgresql",
            connector_version=7,
            deadline=10.0,
            accepted_at=0.0,
        )
        return envelope_body(envelope)

    assert body() is not None
    assert body(data={"x": "\ud800"}) is None
    assert body(data={"x": "a" * MAX_REQUEST_BYTES}) is None
