"""The SDK client, its urllib3 pool and the bounded thread pool every blocking SDK call runs in.

The minio SDK is synchronous: nothing of it runs on the event loop. Its HTTP pool does no retries of its
own (the fleet's retry policy knows the deadline; a second layer would multiply attempts and outlive it),
connects within the connection's timeout and reads within `custom_config.read_timeout`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import certifi
import urllib3
from minio import Minio

from scf.connectors.minio.settings import ClientSettings
from scf.schemas.errors import ErrorCode, TransientError

_T = TypeVar("_T")


class StoreClient:
    """One connector's SDK client; `run` executes a blocking call in the connector's own threads."""

    def __init__(self, settings: ClientSettings, name: str) -> None:
        self.threads = settings.threads
        self.in_flight = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix=f"scf-s3-{name}")
        self.http = urllib3.PoolManager(
            num_pools=4,
            maxsize=settings.threads,
            timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
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
        """Run `call` in the connector's thread pool. Raises `transient` if the client closed under it."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, call)
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
