"""The RabbitMQ connector directly against a real RabbitMQ, in a vhost of its own: messaging and topology."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from scf.connectors.rabbitmq import RabbitMQConnector
from tests.support.rabbitmq import build, call, new_queue, ok, unique
from tests.support.services import Vhost, create_vhost, delete_vhost, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mq_vhost() -> Iterator[Vhost]:
    require("RabbitMQ", "127.0.0.1", 5672)
    created = create_vhost()
    yield created
    delete_vhost(created)


@pytest.fixture(scope="module")
async def mq(mq_vhost: Vhost) -> AsyncIterator[RabbitMQConnector]:
    connector = build(mq_vhost)
    yield connector
    await connector.close()


async def test_json_text_and_binary_bodies_round_trip_with_their_headers(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq)
    binary = bytes(range(256))
    await ok(
        mq,
        "publish",
        {"message": {"order": 7, "items": ["a", "é"]}},
        routing_key=queue,
        headers={"tenant": "acme", "attempt": 2, "tags": ["x", "y"]},
        correlation_id="c-1",
        priority=3,
    )
    await call(
        mq, "publish", {"message": "plain words"}, data_format="text", parameters={"routing_key": queue}
    )
    await call(
        mq,
        "publish",
        {"message": base64.b64encode(binary).decode()},
        data_format="base64",
        parameters={"routing_key": queue, "headers": {"kind": "blob"}},
    )

    got = (await ok(mq, "consume", queue=queue, max_messages=5))["messages"]

    assert [m["body_encoding"] for m in got] == ["json", "text", "base64"]
    assert got[0]["body"] == {"order": 7, "items": ["a", "é"]}
    assert got[0]["headers"] == {"tenant": "acme", "attempt": 2, "tags": ["x", "y"]}
    assert (got[0]["correlation_id"], got[0]["priority"], got[0]["routing_key"]) == ("c-1", 3, queue)
    assert got[1]["body"] == "plain words" and got[1]["content_type"] == "text/plain; charset=utf-8"
    assert base64.b64decode(got[2]["body"]) == binary and got[2]["headers"] == {"kind": "blob"}
    assert (await ok(mq, "queue_stats", queue=queue))["message_count"] == 0


async def test_a_batch_of_1000_is_confirmed_and_consumed_in_order(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq)

    published = await call(
        mq,
        "publish",
        {"messages": [{"n": i} for i in range(1000)]},
        idempotency_key="batch-1000",
        parameters={"routing_key": queue},
    )
    stats = await ok(mq, "queue_stats", queue=queue)
    bodies: list[Any] = []
    while len(bodies) < 1000:
        bodies += [m["body"] for m in (await ok(mq, "consume", queue=queue, max_messages=400))["messages"]]

    assert published.status == "success" and published.records_affected == 1000
    assert published.result_data["published"] == 1000
    assert len(set(published.result_data["message_ids"])) == 1000
    assert stats["message_count"] == 1000
    assert bodies == [{"n": i} for i in range(1000)]


async def test_consume_pages_by_page_size_until_no_token_comes_back(mq: RabbitMQConnector) -> None:
    """The convention's paging: page_size messages per consume, next_page_token while pages are full."""
    queue = await new_queue(mq)
    await ok(mq, "publish", {"messages": list(range(7))}, routing_key=queue)
    bodies: list[Any] = []
    token: str | None = None
    for _ in range(5):
        result = await call(mq, "consume", parameters={"queue": queue, "page_size": 3}, page_token=token)
        assert result.status == "success", result.error
        bodies += [m["body"] for m in result.result_data["messages"]]
        token = result.next_page_token
        if token is None:
            break

    assert bodies == list(range(7))
    assert token is None


async def test_an_unroutable_mandatory_message_is_a_permanent_error(mq: RabbitMQConnector) -> None:
    exchange = unique("x")
    await ok(mq, "declare_exchange", exchange=exchange, type="direct", durable=False)

    refused = await call(
        mq, "publish", {"message": 1}, parameters={"exchange": exchange, "routing_key": "none"}
    )
    dropped = await call(
        mq,
        "publish",
        {"message": 1},
        parameters={"exchange": exchange, "routing_key": "none", "mandatory": False},
    )
    await ok(mq, "delete_exchange", exchange=exchange)

    assert refused.error is not None
    assert (refused.error.category, refused.error.code) == ("permanent", "NOT_FOUND")
    assert "'none'" in refused.error.message
    assert dropped.status == "success"


async def test_expired_messages_leave_the_queue_and_unconfirmed_publishing_still_delivers(
    mq_vhost: Vhost, mq: RabbitMQConnector
) -> None:
    queue = await new_queue(mq)
    await ok(mq, "publish", {"message": "short-lived"}, routing_key=queue, expiration_ms=50)
    await ok(mq, "publish", {"message": "kept"}, routing_key=queue, persistent=False)
    unconfirmed = build(mq_vhost, publisher_confirms=False)
    try:
        await ok(unconfirmed, "publish", {"messages": ["fast", "faster"]}, routing_key=queue)
    finally:
        await unconfirmed.close()
    await asyncio.sleep(0.3)

    left = await ok(mq, "consume", queue=queue, max_messages=10)

    assert [m["body"] for m in left["messages"]] == ["kept", "fast", "faster"]


async def test_consume_without_ack_is_a_peek_that_leaves_the_messages(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq)
    await ok(mq, "publish", {"messages": ["a", "b", "c"]}, routing_key=queue)

    peeked = await ok(mq, "consume", queue=queue, max_messages=10, ack=False)
    after_peek = await ok(mq, "queue_stats", queue=queue)
    taken = await ok(mq, "consume", queue=queue, max_messages=10)

    assert [m["body"] for m in peeked["messages"]] == ["a", "b", "c"] and peeked["acked"] is False
    assert after_peek["message_count"] == 3
    assert [m["body"] for m in taken["messages"]] == ["a", "b", "c"]
    assert all(m["redelivered"] for m in taken["messages"])


async def test_a_consume_near_its_deadline_answers_with_what_it_took_and_loses_nothing(
    mq: RabbitMQConnector,
) -> None:
    queue = await new_queue(mq)
    await ok(mq, "publish", {"messages": list(range(1000))}, routing_key=queue)

    hurried = await call(mq, "consume", parameters={"queue": queue, "max_messages": 1000}, timeout=0.2)
    left = await ok(mq, "queue_stats", queue=queue)

    assert hurried.status == "success", hurried.error
    assert hurried.records_processed >= 1
    assert hurried.records_processed + left["message_count"] == 1000


async def test_consume_waits_for_a_message_published_meanwhile(mq: RabbitMQConnector) -> None:
    queue = await new_queue(mq)

    async def publish_later() -> None:
        await asyncio.sleep(0.4)
        await ok(mq, "publish", {"message": "late"}, routing_key=queue)

    publisher = asyncio.create_task(publish_later())
    empty = await ok(mq, "consume", queue=queue)
    waited = await call(mq, "consume", parameters={"queue": queue, "wait": 5}, timeout=10)
    await publisher

    assert empty["messages"] == []
    assert waited.status == "success" and [m["body"] for m in waited.result_data["messages"]] == ["late"]


async def test_declare_bind_unbind_purge_and_delete(mq: RabbitMQConnector) -> None:
    exchange, queue = unique("x"), unique("q")

    declared = await ok(mq, "declare_exchange", exchange=exchange, type="direct")
    made = await ok(mq, "declare_queue", queue=queue, arguments={"x-max-length": 100, "x-message-ttl": 60000})
    again = await ok(
        mq, "declare_queue", queue=queue, arguments={"x-max-length": 100, "x-message-ttl": 60000}
    )
    await ok(mq, "bind", queue=queue, exchange=exchange, routing_key="k")
    await ok(mq, "publish", {"messages": [1, 2]}, exchange=exchange, routing_key="k")
    purged = await ok(mq, "purge_queue", queue=queue)
    await ok(mq, "unbind", queue=queue, exchange=exchange, routing_key="k")
    after_unbind = await call(
        mq, "publish", {"message": 3}, parameters={"exchange": exchange, "routing_key": "k"}
    )
    await ok(mq, "publish", {"message": 4}, routing_key=queue)
    busy = await call(mq, "delete_queue", parameters={"queue": queue, "if_empty": True})
    deleted = await ok(mq, "delete_queue", queue=queue)
    gone = await call(mq, "queue_stats", parameters={"queue": queue})
    await ok(mq, "delete_exchange", exchange=exchange)

    assert declared == {"exchange": exchange, "type": "direct"}
    assert made["message_count"] == 0 and again["queue"] == queue
    assert purged == {"queue": queue, "purged": 2}
    assert after_unbind.error is not None and after_unbind.error.code == "NOT_FOUND"
    assert busy.error is not None and (busy.error.category, busy.error.code) == (
        "permanent",
        "INVALID_REQUEST",
    )
    assert deleted == {"queue": queue, "deleted": True, "message_count": 1}
    assert gone.error is not None and gone.error.code == "NOT_FOUND"


async def test_pub_sub_fanout_reaches_every_bound_queue(mq: RabbitMQConnector) -> None:
    exchange = unique("events")
    await ok(mq, "declare_exchange", exchange=exchange, type="fanout", durable=False)
    subscribers = [await new_queue(mq), await new_queue(mq)]
    for queue in subscribers:
        await ok(mq, "bind", queue=queue, exchange=exchange)

    await ok(mq, "publish", {"message": {"event": "created"}}, exchange=exchange)
    received = [(await ok(mq, "consume", queue=q))["messages"] for q in subscribers]

    assert [[m["body"] for m in got] for got in received] == [[{"event": "created"}]] * 2
    assert received[0][0]["message_id"] == received[1][0]["message_id"]


async def test_topic_routing_follows_the_binding_patterns(mq: RabbitMQConnector) -> None:
    exchange = unique("topics")
    await ok(mq, "declare_exchange", exchange=exchange, type="topic", durable=False)
    eu, errors = await new_queue(mq), await new_queue(mq)
    await ok(mq, "bind", queue=eu, exchange=exchange, routing_key="orders.eu.*")
    await ok(mq, "bind", queue=errors, exchange=exchange, routing_key="#.error")

    for key in ("orders.eu.created", "orders.us.created", "orders.eu.error", "billing.error"):
        result = await call(
            mq, "publish", {"message": key}, parameters={"exchange": exchange, "routing_key": key}
        )
        assert result.status == "success" or key == "orders.us.created"

    assert [m["body"] for m in (await ok(mq, "consume", queue=eu))["messages"]] == [
        "orders.eu.created",
        "orders.eu.error",
    ]
    assert [m["body"] for m in (await ok(mq, "consume", queue=errors))["messages"]] == [
        "orders.eu.error",
        "billing.error",
    ]


async def test_enqueue_creates_a_durable_quorum_queue_and_jobs_come_back(mq: RabbitMQConnector) -> None:
    queue = unique("jobs")

    first = await call(
        mq,
        "enqueue",
        {"jobs": [{"job": 1}, {"job": 2}]},
        idempotency_key="jobs-1",
        parameters={"queue": queue},
    )
    second = await ok(mq, "enqueue", {"jobs": [{"job": 3}]}, queue=queue)
    jobs = (await ok(mq, "consume", queue=queue, max_messages=10))["messages"]
    missing = await call(mq, "enqueue", {"jobs": [1]}, parameters={"queue": unique("jobs"), "create": False})
    await ok(mq, "delete_queue", queue=queue)

    assert first.status == "success"
    assert first.result_data["enqueued"] == 2 and first.result_data["created"] is True
    assert second["created"] is False
    assert [j["body"] for j in jobs] == [{"job": 1}, {"job": 2}, {"job": 3}]
    assert [j["message_id"] for j in jobs[:2]] == first.result_data["message_ids"]
    assert "x-delivery-count" in jobs[0]["headers"]  # quorum queues count deliveries
    assert missing.error is not None and missing.error.code == "NOT_FOUND"
