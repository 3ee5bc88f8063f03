"""`SyncFleetClient`: `FleetClient`'s calls for code without an event loop (Flask, Django, scripts).

    with SyncFleetClient("amqp://guest:guest@127.0.0.1:5672/") as fleet:
        result = fleet.execute_operation("analytics_db", {"operation": "query", ...})
        operation_id = fleet.submit("analytics_db", {...})        # returns at once
        later = fleet.result(operation_id, wait=30)

One AMQP connection and one event loop live on a background daemon thread; every call is handed to
that loop and its caller's thread waits for the answer. Any number of threads may share one client
(one per process is the intended use: create it at start-up, close it at shutdown); each call has its
own correlation id and reply. Errors are the async client's typed errors, raised in the caller's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from scf.fleet.client import DEFAULT_AMQP_URL, FleetClient, RemoteConnector
from scf.fleet.rpc import ProgressCallback
from scf.schemas.connection import ServiceConnection
from scf.schemas.control import (
    Acknowledged,
    CancelRequested,
    ConnectorCreated,
    ConnectorMetrics,
    ConnectorState,
    ConnectorStatus,
    FleetMetrics,
)
from scf.schemas.dead_letters import DeadLetterOutcome, DeadLetterPage
from scf.schemas.errors import ErrorCode, TransientError
from scf.schemas.operation import ConnectionTestResult, OperationRequest, OperationResult

__all__ = ["SyncFleetClient", "SyncRemoteConnector"]

T = TypeVar("T")

#: Seconds `close()` waits for the loop thread to finish closing the connection.
CLOSE_WAIT_SECONDS = 10.0


async def _cancel_the_rest() -> None:
    """Cancel and await every task still on the client's loop (calls whose callers gave up)."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class SyncRemoteConnector:
    """What `SyncFleetClient.create_connector` returns: the in-process connector's calls, synchronous."""

    def __init__(self, client: SyncFleetClient, remote: RemoteConnector) -> None:
        self._client = client
        self.created = remote.created

    @property
    def service_name(self) -> str:
        """The connector's name in the fleet's registry."""
        return self.created.service_name

    def test_connection(self) -> ConnectionTestResult:
        """Test the connection on a worker now (see `SyncFleetClient.test_connection`)."""
        return self._client.test_connection(self.service_name)

    def execute_operation(self, request: OperationRequest | Mapping[str, Any]) -> OperationResult:
        """Run one operation on this connector (see `SyncFleetClient.execute_operation`)."""
        return self._client.execute_operation(self.service_name, request)


class SyncFleetClient:
    """A thread-safe, blocking `FleetClient`. `timeout`: an operation's default deadline and the wait for
    a control-plane reply, as in `FleetClient`. Connects in the constructor (raises the broker client's
    connection errors there)."""

    def __init__(
        self, amqp_url: str = DEFAULT_AMQP_URL, *, timeout: float = 30.0, fast_path: bool = True
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="scf-sync-client", daemon=True)
        self._lock = threading.Lock()
        self._calls: set[concurrent.futures.Future[Any]] = set()
        self._closed = False
        self._thread.start()
        try:
            self._client: FleetClient = self._call(
                FleetClient.connect(amqp_url, timeout=timeout, fast_path=fast_path)
            )
        except BaseException:
            self._stop_loop()
            raise

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the client's loop and wait for it in this thread."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("SyncFleetClient called from its own loop (e.g. an on_progress callback)")
        with self._lock:
            if self._closed:
                coroutine.close()
                raise TransientError("the SyncFleetClient is closed", code=ErrorCode.INTERNAL)
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            self._calls.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise TransientError(
                "the SyncFleetClient was closed before the reply arrived", code=ErrorCode.INTERNAL
            ) from None
        finally:
            with self._lock:
                self._calls.discard(future)

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection and stop the loop thread. Calls still waiting fail with a TransientError.
        Safe to call twice and from any thread but the client's own."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        closing = asyncio.run_coroutine_threadsafe(self._client.close(), self._loop)
        with contextlib.suppress(Exception):  # best effort: the loop is stopped either way
            closing.result(timeout=CLOSE_WAIT_SECONDS)
        with self._lock:
            for call in list(self._calls):
                call.cancel()
        finishing = asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self._loop)
        with contextlib.suppress(Exception):  # no task is left pending when the loop stops
            finishing.result(timeout=CLOSE_WAIT_SECONDS)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CLOSE_WAIT_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def timeout(self) -> float:
        """The default deadline of an operation and the wait for a control-plane reply (seconds)."""
        return self._client.timeout

    # --- control plane ----------------------------------------------------------------------------------

    def create_connector(self, config: ServiceConnection | Mapping[str, Any]) -> SyncRemoteConnector:
        """Register a connector (the spec's POST /connectors body); a worker tests its connection.

        Raises CONNECTOR_EXISTS, INVALID_CONFIG, FORBIDDEN, RpcTimeoutError."""
        return SyncRemoteConnector(self, self._call(self._client.create_connector(config)))

    def update_connector(self, config: ServiceConnection | Mapping[str, Any]) -> ConnectorCreated:
        """Replace a connector's configuration. Raises CONNECTOR_NOT_FOUND, INVALID_CONFIG, FORBIDDEN."""
        return self._call(self._client.update_connector(config))

    def get_connector(self, service_name: str) -> ConnectorState:
        """A connector's configuration (secrets masked) and state. Raises CONNECTOR_NOT_FOUND."""
        return self._call(self._client.get_connector(service_name))

    def list_connectors(self, service_type: str | None = None) -> list[ConnectorState]:
        """Every registered connector the caller may read (optionally of one type)."""
        return self._call(self._client.list_connectors(service_type))

    def delete_connector(self, service_name: str) -> Acknowledged:
        """Remove a connector; every worker closes its pools. Raises CONNECTOR_NOT_FOUND, FORBIDDEN."""
        return self._call(self._client.delete_connector(service_name))

    def pause_connector(self, service_name: str) -> Acknowledged:
        """Refuse the connector's operations (CONNECTOR_PAUSED) until resumed. Raises CONNECTOR_NOT_FOUND."""
        return self._call(self._client.pause_connector(service_name))

    def resume_connector(self, service_name: str) -> Acknowledged:
        """Take the connector's operations again. Raises CONNECTOR_NOT_FOUND."""
        return self._call(self._client.resume_connector(service_name))

    def connector_status(self, service_name: str) -> ConnectorStatus:
        """Health, breaker and pause state. Raises CONNECTOR_NOT_FOUND."""
        return self._call(self._client.connector_status(service_name))

    def test_connection(self, service_name: str) -> ConnectionTestResult:
        """Test the connection on a worker now; a failed test is a result (`ok` False), not an error."""
        return self._call(self._client.test_connection(service_name))

    def get_metrics(self, service_name: str) -> ConnectorMetrics:
        """The spec's performance metrics of one connector. Raises CONNECTOR_NOT_FOUND."""
        return self._call(self._client.get_metrics(service_name))

    def fleet_metrics(self) -> FleetMetrics:
        """Workers, queues and connectors of the whole fleet. Raises FORBIDDEN without metrics:read."""
        return self._call(self._client.fleet_metrics())

    def get_result(self, operation_id: str) -> OperationResult:
        """The stored result of one of the caller's operations, now (see `result` to wait for it).

        Raises RESULT_NOT_FOUND (unknown, expired or another caller's) or IN_PROGRESS (no result yet)."""
        return self._call(self._client.get_result(operation_id))

    def cancel_operation(self, operation_id: str) -> CancelRequested:
        """Cancel: a queued operation never runs, a running one stops at its next batch; `status` is
        `already_finished` when there was nothing left to stop. Raises NOT_FOUND for an unknown id."""
        return self._call(self._client.cancel_operation(operation_id))

    # --- dead letters -----------------------------------------------------------------------------------

    def dead_letters(self, **query: Any) -> DeadLetterPage:
        """`dlq.list`: newest first; filters `service_name`, `reason`; paging `limit`, `offset`."""
        return self._call(self._client.dead_letters(**query))

    def replay_dead_letters(self, ids: list[str] | None = None, **selection: Any) -> DeadLetterOutcome:
        """`dlq.replay`: by `ids`, or `all=True` narrowed by `service_name` / `reason`."""
        return self._call(self._client.replay_dead_letters(ids, **selection))

    def purge_dead_letters(self, ids: list[str] | None = None, **selection: Any) -> DeadLetterOutcome:
        """`dlq.purge`: delete for good, by `ids` or `all=True` narrowed by `service_name` / `reason`."""
        return self._call(self._client.purge_dead_letters(ids, **selection))

    # --- data plane -------------------------------------------------------------------------------------

    def execute_operation(
        self,
        service_name: str,
        request: OperationRequest | Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> OperationResult:
        """Run one operation through the fleet and wait for its result. Never raises for a failed
        operation: see `result.error`. `on_progress` runs on the client's thread: keep it short."""
        return self._call(
            self._client.execute_operation(service_name, request, timeout=timeout, on_progress=on_progress)
        )

    def submit(self, service_name: str, request: OperationRequest | Mapping[str, Any]) -> str:
        """Queue one operation and return its operation id once the broker has it (like Celery's
        `.delay()`); fetch the result later with `result(operation_id, wait=...)`. Raises
        INVALID_REQUEST for a request that cannot be sent, and the broker's publish errors."""
        return self._call(self._client.submit(service_name, request))

    def result(self, operation_id: str, *, wait: float = 0.0) -> OperationResult:
        """The result of an operation, waiting up to `wait` seconds for it to finish.

        Raises IN_PROGRESS when it has not finished by then, RESULT_NOT_FOUND for an id the fleet does
        not know (or that is another caller's, or expired)."""
        return self._call(self._client.result(operation_id, wait=wait))
