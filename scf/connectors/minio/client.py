"""The SDK client, its urllib3 pool and the bounded thread pool every blocking SDK call runs in.

The minio SDK is synchronous: nothing of it runs on the event loop. Its HTTP pool does no retries of its
own (the fleet's retry policy knows the deadline; a second layer would multiply attempts and outlive it),
connects within the connection's timeout and reads within `custom_config.read_timeout`, each call never
past the deadline of the request (or connection test) it serves.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

import certifi
import urllib3
from minio import Minio
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import ConnectTimeoutError

from scf.connectors.minio.settings import ClientSettings
from scf.connectors.sources import DEADLINE
from scf.schemas.errors import ErrorCode, TransientError

_T = TypeVar("_T")

#: The absolute deadline (`time.time()`) of the SDK call running in this worker thread, if any.
_CALL_DEADLINE: ContextVar[float | None] = ContextVar("scf_s3_call_deadline", default=None)


def _within(deadline: float | None, call: Callable[[], _T]) -> _T:
    """Run `call` (in a worker thread) with `deadline` visible to the pool manager."""
    token = _CALL_DEADLINE.set(deadline)
    try:
        return call()
    finally:
        _CALL_DEADLINE.reset(token)


def call_timeout(connect: float, read: float, deadline: float | None, now: float) -> urllib3.Timeout:
    """The pool's connect and read timeouts, neither longer than what is left before `deadline`.

    Raises urllib3's ConnectTimeoutError when nothing is left: no call starts past its deadline.
    """
    if deadline is not None:
        left = deadline - now
        if left <= 0:
            raise ConnectTimeoutError("the request's deadline passed before the call to the store")
        connect, read = min(connect, left), min(read, left)
    return urllib3.Timeout(connect=connect, read=read)


class _BoundedPoolManager(urllib3.PoolManager):
    """The SDK passes no timeout of its own: each request gets the pool's, clipped to the deadline."""

    def __init__(self, *, connect: float, read: float, **kw: Any) -> None:
        super().__init__(timeout=urllib3.Timeout(connect=connect, read=read), **kw)
        self.connect_seconds, self.read_seconds = connect, read

    # the same override urllib3's own PoolManager makes of RequestMethods.urlopen
    def urlopen(  # type: ignore[override]
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> BaseHTTPResponse:
        # a call from `run` carries its deadline; one from a thread that copied the caller's context
        # (asyncio.to_thread, e.g. a streamed read for an ingest) sees the operation's own
        deadline = _CALL_DEADLINE.get() or DEADLINE.get()
        kw["timeout"] = call_timeout(self.connect_seconds, self.read_seconds, deadline, time.time())
        return super().urlopen(method, url, redirect=redirect, **kw)


class StoreClient:
    """One connector's SDK client; `run` executes a blocking call in the connector's own threads."""

    def __init__(self, settings: ClientSettings, name: str) -> None:
        self.threads = settings.threads
        self.in_flight = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix=f"scf-s3-{name}")
        self.http = _BoundedPoolManager(
            num_pools=4,
            maxsize=settings.threads,
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            retries=urllib3.Retry(total=0, redirect=0, raise_on_redirect=False, raise_on_status=False),
            cert_reqs="CERT_REQUIRED" if settings.cert_check else "CERT_NONE",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self.sdk = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            session_token=settings.session_token,
            secure=settings.secure,
            region=settings.region,
            http_client=self.http,
        )

    async def run(self, call: Callable[[], _T]) -> _T:
        """Run `call` in the connector's thread pool, every HTTP call of it bounded by the time left
        before the request's deadline. Raises `transient` if the client closed under it."""
        loop = asyncio.get_running_loop()
        deadline = DEADLINE.get()
        try:
            future = loop.run_in_executor(self._executor, _within, deadline, call)
        except RuntimeError as exc:  # submitted after close: the next attempt opens a fresh client
            raise TransientError("the connector was closed", code=ErrorCode.CONNECTION_FAILED) from exc
        self.in_flight += 1
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._closed and task is not None and not task.cancelling():
                # close() cancelled our queued call, nobody cancelled us: a retry may run on a new client
                raise TransientError("the connector was closed", code=ErrorCode.CONNECTION_FAILED) from None
            raise
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        """Stop taking calls and cancel queued ones; calls already running finish on their own. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.http.clear()
