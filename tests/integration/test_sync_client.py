"""The synchronous client and fire-and-forget calls against the session fleet.

A "Flask-style" caller (many threads sharing one SyncFleetClient, no event loop of their own) and a
"Celery-style" caller (submit now, fetch the result later) both get every answer right.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from scf import SyncFleetClient
from scf.schemas.errors import ConnectorError, ErrorCode
from tests.support.fleet import FleetProcess
from tests.support.postgres import pg_body
from tests.support.services import Vhost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sync_client(fleet: dict[str, FleetProcess], vhost: Vhost) -> Iterator[SyncFleetClient]:
    client = SyncFleetClient(vhost.amqp_url, timeout=30)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def pg_name(sync_client: SyncFleetClient) -> Iterator[str]:
    name = f"sync_pg_{uuid.uuid4().hex[:8]}"
    remote = sync_client.create_connector(
        pg_body(service_name=name, custom_config={"connection_pool_size": 2, "max_connections": 4})
    )
    assert remote.created.connection_ok is True, remote.created
    try:
        yield name
    finally:
        sync_client.delete_connector(name)


def query(n: int) -> dict[str, object]:
    return {"operation": "query", "parameters": {"query": f"SELECT {n}::int AS n"}}


def test_threads_share_one_client_and_each_gets_its_own_answer(
    sync_client: SyncFleetClient, pg_name: str
) -> None:
    main_threads = threading.active_count()

    def one(n: int) -> int:
        result = sync_client.execute_operation(pg_name, query(n))
        assert result.status == "success", result.error
        return int(result.result_data["rows"][0]["n"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(200)))

    assert answers == list(range(200))
    # one background thread for the client, not one per call
    assert threading.active_count() <= main_threads


def test_submit_returns_at_once_and_result_waits_for_the_answer(
    sync_client: SyncFleetClient, pg_name: str
) -> None:
    ids = [sync_client.submit(pg_name, query(n)) for n in range(50)]
    assert len(set(ids)) == 50
    results = [sync_client.result(operation_id, wait=30) for operation_id in ids]
    assert [int(r.result_data["rows"][0]["n"]) for r in results] == list(range(50))
    assert [r.operation_id for r in results] == ids


def test_result_says_not_yet_then_gives_the_answer(sync_client: SyncFleetClient, pg_name: str) -> None:
    slow = {"operation": "query", "parameters": {"query": "SELECT pg_sleep(1.5)::text AS slept"}}
    operation_id = sync_client.submit(pg_name, slow)
    with pytest.raises(ConnectorError) as early:
        sync_client.result(operation_id)  # no wait: it is queued or running
    assert early.value.code in (ErrorCode.IN_PROGRESS, ErrorCode.RESULT_NOT_FOUND)
    assert sync_client.result(operation_id, wait=30).status == "success"


def test_an_unknown_operation_is_a_typed_error(sync_client: SyncFleetClient) -> None:
    with pytest.raises(ConnectorError) as caught:
        sync_client.result(f"op_unknown_{uuid.uuid4().hex[:8]}", wait=0.3)
    assert caught.value.code == ErrorCode.RESULT_NOT_FOUND


def test_a_failed_operation_is_a_failed_result_not_an_exception(
    sync_client: SyncFleetClient, pg_name: str
) -> None:
    result = sync_client.execute_operation(pg_name, {"operation": "no_such_operation"})
    assert result.status == "failed" and result.error is not None
    assert result.error.code == ErrorCode.UNKNOWN_OPERATION


def test_close_fails_calls_in_flight_and_later_calls_clearly(
    fleet: dict[str, FleetProcess], vhost: Vhost, pg_name: str
) -> None:
    client = SyncFleetClient(vhost.amqp_url, timeout=30)
    outcome: list[BaseException | object] = []

    def slow_call() -> None:
        try:
            outcome.append(
                client.execute_operation(
                    pg_name, {"operation": "query", "parameters": {"query": "SELECT pg_sleep(5)::text"}}
                )
            )
        except BaseException as exc:  # what the waiting thread saw
            outcome.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    for _ in range(200):  # until the call is handed to the client's loop (in flight), not a fixed sleep
        if client._calls:
            break
        time.sleep(0.01)
    assert client._calls, "the call never started"
    client.close()
    caller.join(timeout=15)

    assert not caller.is_alive(), "a call in flight hung after close()"
    assert len(outcome) == 1
    seen = outcome[0]
    # either its reply had not come (a typed error), or the client's failed result says it was closed
    if isinstance(seen, ConnectorError):
        assert "closed" in seen.message
    else:
        assert getattr(seen, "status", None) == "failed", seen
    with pytest.raises(ConnectorError, match="closed"):
        client.list_connectors()
    client.close()  # twice is fine
