"""Prometheus metrics of the gateway's HTTP traffic: requests by method, route and status, and their
duration. A pure ASGI middleware, outermost, so refusals by the body guard and 404s count too.

Labels are bounded whatever a caller sends: the route is the matched route's template
(`/connectors/{service_name}`), never the raw path; no match is `unmatched`; an unusual method is
`other`.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scf.fleet.metrics import Children

REQUESTS_TOTAL = Counter(
    "scf_gateway_requests_total", "HTTP requests the gateway answered.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "scf_gateway_request_duration_seconds",
    "Time from a request's arrival to the end of its answer.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_requests = Children(REQUESTS_TOTAL, limit=4096)
_seconds = Children(REQUEST_SECONDS, limit=1024)


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the caller gets if the app raised before answering
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_label(scope)
            _requests(method, route, str(status)).inc()
            _seconds(method, route).observe(time.perf_counter() - started)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                count()  # before the last byte leaves: the caller's next request sees this one counted
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not counted:
                count()
