"""The probe and metrics endpoint every non-gateway process serves: `/healthz`, `/readyz`, `/metrics`.

A small ASGI app on uvicorn, in the process's own event loop: prometheus-client's ASGI app answers
`/metrics` (content negotiation, gzip), two routes answer the probes. A supervisor serves the same
three paths for all its children: its checks may be coroutines (it asks the children with `http_get`),
and `merge_metrics` labels each child's samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import socket
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import TypeVar

import httpx
import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, make_asgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

log = structlog.get_logger(__name__)

T = TypeVar("T")

Check = Callable[[], bool | Awaitable[bool]]
MetricsText = Callable[[], bytes | Awaitable[bytes]]

#: The most a supervisor reads of one child's answer (its own process, but still a bound).
MAX_CHILD_RESPONSE = 32 * 1024 * 1024


def _alive() -> bool:
    return True


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the process owns SIGTERM/SIGINT (runner, supervisor) and stops this server itself


class ProbeServer:
    """`metrics=None` serves this process's registry through prometheus-client's ASGI app."""

    def __init__(
        self,
        ready: Check,
        host: str = "0.0.0.0",  # noqa: S104
        port: int = 9464,
        *,
        alive: Check = _alive,
        metrics: MetricsText | None = None,
    ) -> None:
        self._ready = ready
        self._alive = alive
        self._metrics = metrics
        self._own_metrics = make_asgi_app()
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int | None:
        if self._socket is None or self._server is None or not self._server.started:
            return None
        return int(self._socket.getsockname()[1])

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self._port == 0:
                sock.close()
                raise
            log.warning("metrics_port_in_use", port=self._port, fallback="ephemeral")
            sock.bind((self._host, 0))
        sock.listen(64)
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        self._socket = self._bind()
        config = uvicorn.Config(
            self,
            log_config=None,
            access_log=False,
            lifespan="off",
            # a probe port answers three small GETs: a few connections, short idle, small headers
            limit_concurrency=32,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="probe-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the probe server stopped before it started")
            await asyncio.sleep(0.01)
        log.info("probe_server_started", port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                self._task.cancel()
        if self._socket is not None:
            self._socket.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        response: Response
        if scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("GET only\n", status_code=405, headers={"Allow": "GET, HEAD"})
        elif path == "/metrics":
            if self._metrics is None:
                await self._own_metrics(scope, receive, send)
                return
            response = Response(await _answer(self._metrics()), media_type=CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            alive = await _answer(self._alive())
            response = JSONResponse({"status": "alive" if alive else "not alive"}, 200 if alive else 503)
        elif path == "/readyz":
            ready = await _answer(self._ready())
            response = JSONResponse({"status": "ready" if ready else "not ready"}, 200 if ready else 503)
        else:
            response = PlainTextResponse("not found\n", status_code=404)
        await response(scope, receive, send)


async def _answer(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await value
    return value


async def http_get(port: int, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """GET `path` from a probe server on loopback: (status, body); raises OSError/TimeoutError."""
    body = bytearray()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, trust_env=False) as client,
            client.stream(
                "GET", f"http://127.0.0.1:{port}{path}", headers={"Accept-Encoding": "identity"}
            ) as answer,
        ):
            async for chunk in answer.aiter_raw():
                body += chunk
                if len(body) > MAX_CHILD_RESPONSE:
                    raise OSError(errno.EMSGSIZE, f"answer from :{port}{path} is over {MAX_CHILD_RESPONSE}")
            return answer.status_code, bytes(body)
    except httpx.TimeoutException as exc:
        raise TimeoutError(f"no answer from :{port}{path} within {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise OSError(errno.ECONNREFUSED, f"{type(exc).__name__} from :{port}{path}: {exc}") from exc


class _Families:
    """A collector that yields metric families already gathered (one scrape's worth)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def parse_metrics(text: bytes) -> list[Metric]:
    return list(text_string_to_metric_families(text.decode("utf-8", errors="replace")))


def merge_metrics(sources: Iterable[tuple[str, Iterable[Metric]]], label: str = "process") -> bytes:
    """One exposition of several processes' metrics, each sample labelled `label=<source name>`.

    Families are merged by name so each name has one HELP/TYPE; a family whose type disagrees with
    the first source's is dropped (it cannot be exposed under one TYPE line).
    """
    families: dict[str, Metric] = {}
    for source, metrics in sources:
        for family in metrics:
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type)
            elif merged.type != family.type:
                log.warning("metrics_type_conflict", family=family.name, source=source)
                continue
            merged.samples.extend(s._replace(labels={**s.labels, label: source}) for s in family.samples)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)
