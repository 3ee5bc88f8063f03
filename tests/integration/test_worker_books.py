"""A worker's background bookkeeping in real Redis: tallies that add up across workers, results stored
from the reply's bytes, breaker successes counted locally, the cancel marks a starting worker reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from scf.connectors.circuit import BreakerPolicy
from scf.fleet import amqp, keys
from scf.fleet.crypto import SecretBox
from scf.fleet.state import StateStore
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCode, TransientError
from scf.schemas.operation import OperationOutcome, OperationResult
from scf.worker.books import Books, ResultWriter
from scf.worker.shared_breakers import RedisBreakerBoard
from tests.support.services import claim_redis_db

pytestmark = pytest.mark.integration

POLICY = BreakerPolicy(window=30, min_failures=4, failure_rate=0.5, cooldown=5)


@pytest.fixture
async def state() -> AsyncIterator[StateStore]:
    claimed = claim_redis_db()
    store = StateStore.from_url(claimed.url, SecretBox([Fernet.generate_key().decode()]))
    try:
        await store.save_connector(
            ServiceConnection.model_validate({"service_type": "csv", "service_name": "books_db"}), create=True
        )
        yield store
    finally:
        await store.close()
        claimed.release()


def ok(operation_id: str, seconds: float = 0.01) -> OperationResult:
    return OperationResult.succeeded(operation_id, OperationOutcome(result_data={"n": 1}), seconds)


def failed(operation_id: str) -> OperationResult:
    error = TransientError("the service timed out", code=ErrorCode.TIMEOUT)
    return OperationResult.failed(operation_id, error, 0.2)


def board(state: StateStore, owner: str, now: list[float], refresh: float = 60.0) -> RedisBreakerBoard:
    return RedisBreakerBoard(state, owner, POLICY, refresh=refresh, clock=lambda: now[0])


async def test_two_workers_tallies_add_up_in_the_spec_metrics(state: StateStore) -> None:
    one = Books(state, board(state, "w1", [1_000.0]))
    two = Books(state, board(state, "w2", [1_000.0]))
    for i in range(5):
        one.count("books_db", ok(f"op_a{i}"))
    for i in range(3):
        two.count("books_db", ok(f"op_b{i}"))
    two.count("books_db", failed("op_b_failed"))
    before = await state.metrics("books_db")

    await asyncio.gather(one.flush(), two.flush())

    after = await state.metrics("books_db")
    assert before.total_operations == 0  # counted in memory until a flush
    assert (after.total_operations, after.successful_operations, after.failed_operations) == (9, 8, 1)
    assert after.average_response_time == pytest.approx((8 * 0.01 + 0.2) / 9, abs=1e-6)
    assert after.p50_response_time is not None and after.error_rate == pytest.approx(1 / 9, abs=1e-4)
    last_error, _ = await state.last_error("books_db")
    assert last_error is not None and last_error.code == ErrorCode.TIMEOUT


async def test_a_graceful_close_flushes_what_was_counted(state: StateStore) -> None:
    books = Books(state, board(state, "w1", [1_000.0]), interval=3600)
    books.start()
    await asyncio.sleep(0)  # the loop's leading flush has nothing yet
    for i in range(4):
        books.count("books_db", ok(f"op_{i}"))

    await books.close()

    assert (await state.metrics("books_db")).total_operations == 4


async def test_the_first_operation_after_a_quiet_spell_is_flushed_at_once(state: StateStore) -> None:
    books = Books(state, board(state, "w1", [1_000.0]), interval=3600)
    books.start()
    try:
        books.count("books_db", ok("op_lone"))
        for _ in range(100):  # bounded poll: the flush runs in the background
            if (await state.metrics("books_db")).total_operations:
                break
            await asyncio.sleep(0.02)
        assert (await state.metrics("books_db")).total_operations == 1
    finally:
        await books.close()


async def test_counts_whose_flush_failed_are_kept_for_the_next(state: StateStore) -> None:
    unreachable = StateStore(aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), state.box)
    books = Books(unreachable, board(state, "w1", [1_000.0]))
    books.count("books_db", ok("op_1"))
    try:
        await books.flush()  # fails: nothing raised, nothing lost
    finally:
        await unreachable.close()
    books.state = state
    books.count("books_db", ok("op_2"))

    await books.flush()

    assert (await state.metrics("books_db")).total_operations == 2


async def test_concurrent_results_are_stored_as_sent_and_read_back(state: StateStore) -> None:
    writer = ResultWriter(state, ttl=60)
    results = [ok(f"op_store_{i}") for i in range(40)] + [failed("op_store_failed")]
    bodies = [amqp.encode(r) for r in results]

    await asyncio.gather(*(writer.store(r.operation_id, b) for r, b in zip(results, bodies, strict=True)))

    for result, body in zip(results, bodies, strict=True):
        assert await state.redis.get(keys.result(result.operation_id)) == body.decode()
        assert await state.get_result(result.operation_id) == result
    assert 0 < await state.redis.ttl(keys.result("op_store_0")) <= 60


async def test_a_failed_store_raises_the_typed_error_to_every_waiter(state: StateStore) -> None:
    unreachable = StateStore(aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), state.box)
    writer = ResultWriter(unreachable, ttl=60)
    try:
        outcomes = await asyncio.gather(
            *(writer.store(f"op_{i}", b"{}") for i in range(3)), return_exceptions=True
        )
    finally:
        await unreachable.close()
    assert all(isinstance(o, ConnectorError) and o.code == ErrorCode.STATE_UNAVAILABLE for o in outcomes)


async def test_breaker_successes_stay_local_until_a_flush(state: StateStore) -> None:
    now = [2_000_000.0]
    one = board(state, "w1", now)
    window = keys.breaker_window("db", int(now[0] // POLICY.window))
    for _ in range(6):
        await one.record("db", ok=True, probe=False)
    assert await state.redis.hgetall(window) == {}

    await one.flush()

    assert await state.redis.hgetall(window) == {"calls": "6"}


async def test_a_failure_carries_the_unflushed_successes_so_the_rate_stays_right(state: StateStore) -> None:
    now = [3_000_000.0]
    one, two = board(state, "w1", now), board(state, "w2", now)
    for _ in range(10):
        await one.record("db", ok=True, probe=False)
    for _ in range(4):  # 4 failures of 14 calls: under the 50 % rate, so it stays closed
        await one.record("db", ok=False, probe=False)

    assert await state.redis.hget(keys.breaker("db"), "state") is None
    for _ in range(6):  # 10 of 20: now it opens, fleet-wide, at once
        await two.record("db", ok=False, probe=False)
    assert await state.redis.hget(keys.breaker("db"), "state") == "open"
    fresh = board(state, "w3", now)
    assert not (await fresh.admit("db")).allowed


async def test_a_closed_breaker_is_admitted_from_the_view_until_it_is_refreshed(state: StateStore) -> None:
    now = [4_000_000.0]
    one = board(state, "w1", now, refresh=60.0)
    assert (await one.admit("db")).allowed
    await state.redis.hset(keys.breaker("db"), mapping={"state": "open", "opened_at": repr(now[0])})

    cached = await one.admit("db")  # no round trip: the view is fresh
    await one.flush()  # the flush refreshes every view in its pipeline
    refreshed = await one.admit("db")

    assert cached.allowed
    assert not refreshed.allowed


async def test_concurrent_admissions_share_one_fetch(state: StateStore) -> None:
    now = [5_000_000.0]
    one = board(state, "w1", now, refresh=0.0)
    await state.redis.config_resetstat()

    admissions = await asyncio.gather(*(one.admit("db") for _ in range(50)))

    stats = await state.redis.info("commandstats")
    assert all(a.allowed for a in admissions)
    assert stats["cmdstat_hgetall"]["calls"] < 50


async def test_a_starting_worker_reads_every_cancel_mark(state: StateStore) -> None:
    for operation_id in ("op_c1", "op_c*2", "op_c3"):
        await state.redis.set(keys.cancelled(operation_id), "1", ex=60)
    await state.redis.set("scf:cancelled_not_a_mark", "1", ex=60)

    marks = await state.cancel_marks(limit=100)
    capped = await state.cancel_marks(limit=2)

    assert sorted(marks) == ["op_c*2", "op_c1", "op_c3"]
    assert len(capped) == 2


async def test_a_view_fetched_before_a_failed_probe_does_not_win_a_second_probe(state: StateStore) -> None:
    now = [6_000_000.0]
    one, two = board(state, "w1", now, refresh=60.0), board(state, "w2", now, refresh=60.0)
    for _ in range(4):
        await one.record("db", ok=False, probe=False)
    now[0] += POLICY.cooldown + 0.5
    first = await two.admit("db")  # two wins the probe; its view: open, cooldown over
    await two.record("db", ok=False, probe=True)  # and fails it: open again from now
    now[0] += POLICY.cooldown + 0.5
    probe = await one.admit("db")
    assert first.probe and probe.probe
    now[0] += 0.1

    await one.record("db", ok=False, probe=True)  # one's probe failed too: open again from now
    second = await two.admit("db")  # two's cached view still holds the previous opening

    assert not second.allowed and not second.probe
    assert second.retry_after == pytest.approx(POLICY.cooldown, abs=0.2)


async def test_an_operation_claim_is_one_holder_with_its_ttl_and_begin_reads_the_cancel_mark(
    state: StateStore,
) -> None:
    """`claim_operation` and `begin_operation` (one `SET NX GET` each): the first request holds the id,
    its own redelivery finds it held by itself, any other request is refused, and the holder and TTL
    are never overwritten by a refused claim."""
    claim = keys.operation_claim("op_claimed")
    assert await state.claim_operation("op_claimed", "request-a", 60) is True
    assert await state.claim_operation("op_claimed", "request-a", 60) is True  # its own redelivery
    assert await state.claim_operation("op_claimed", "request-b", 600) is False
    assert await state.redis.get(claim) == "request-a"
    assert 0 < await state.redis.ttl(claim) <= 60
    assert await state.begin_operation("op_claimed", "request-b", 600) == (False, False)
    assert await state.begin_operation("op_claimed", "request-a", 60) == (True, False)
    await state.cancel("op_claimed", 60)
    assert await state.begin_operation("op_claimed", "request-a", 60) == (True, True)
    assert await state.begin_operation("op_fresh", "request-c", 60) == (True, False)
    assert await state.redis.get(keys.operation_claim("op_fresh")) == "request-c"
    assert await state.redis.get(claim) == "request-a"
