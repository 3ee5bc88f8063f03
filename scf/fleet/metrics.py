"""Prometheus metrics every fleet process exports (names `scf_<thing>_<unit|total>`)."""

from __future__ import annotations

import platform
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram, Info
from prometheus_client.metrics import MetricWrapperBase

from scf._version import __version__

_M = TypeVar("_M", bound=MetricWrapperBase)


class Children(Generic[_M]):
    """A labelled metric's children by label values, remembered: `.labels(...)` (argument checks, a
    lock, a dict) once per label set instead of once per call on the hot path. Bounded: past `limit`
    label sets it asks the metric each time, so hostile label values cost no more memory than before."""

    def __init__(self, metric: _M, limit: int = 1024) -> None:
        self._metric = metric
        self._limit = limit
        self._known: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        found = self._known.get(values)
        if found is None:
            found = self._metric.labels(*values)
            if len(self._known) < self._limit:
                self._known[values] = found
        return found


OPERATION_SECONDS = Histogram(
    "scf_operation_duration_seconds",
    "Time to run one operation in a worker, by service type, operation and status.",
    ["service_type", "operation", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
INFLIGHT = Gauge("scf_inflight_operations", "Messages being processed right now, by role.", ["role"])
REQUESTS_TOTAL = Counter(
    "scf_requests_total", "Requests taken from scf.requests, by type and outcome.", ["type", "outcome"]
)
REJECTED_TOTAL = Counter(
    "scf_messages_rejected_total", "Messages answered with a validation error, by code.", ["code"]
)
ORPHAN_REPLIES = Counter(
    "scf_orphan_replies_total", "Replies whose reply queue was gone (result kept in Redis)."
)
REDELIVERED_TOTAL = Counter(
    "scf_redelivered_total", "Messages a worker received again after a crash or nack."
)
QUEUE_DEPTH = Gauge("scf_queue_depth", "Messages ready in a fleet queue (sampled by dispatchers).", ["queue"])
QUEUE_CONSUMERS = Gauge(
    "scf_queue_consumers",
    "Consumers of a fleet queue (sampled by dispatchers): on scf.ops.<type>, the live workers of a type.",
    ["queue"],
)
QUEUE_WAIT_SECONDS = Histogram(
    "scf_queue_wait_seconds",
    "Time an operation waited in its scf.ops.<type> queue before a worker took it, by service type.",
    ["service_type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RETRIES_TOTAL = Counter(
    "scf_retries_total", "In-process retries of failed operation attempts.", ["service_type"]
)
CONNECTOR_HEALTHY = Gauge(
    "scf_connector_healthy", "1 healthy, 0 unhealthy (from the health monitor).", ["service_name"]
)
POOL_SIZE = Gauge(
    "scf_pool_connections", "Connections in a connector's pool in this process.", ["service_name", "state"]
)
BREAKER_STATE = Gauge(
    "scf_breaker_state",
    "Circuit breaker of an endpoint as this process last saw it: 0 closed, 1 half-open, 2 open.",
    ["endpoint"],
)
BREAKER_TRANSITIONS = Counter(
    "scf_breaker_transitions_total", "Circuit breakers this process opened or closed.", ["endpoint", "to"]
)
DEAD_LETTERS_TOTAL = Counter(
    "scf_dead_letters_total", "Messages dead-lettered, by reason (as stored by a dispatcher).", ["reason"]
)
DELAYED_RETRIES_TOTAL = Counter(
    "scf_delayed_retries_total", "Operations sent to a delayed-retry queue, by tier.", ["tier"]
)
IDEMPOTENT_REPLAYS_TOTAL = Counter(
    "scf_idempotent_replays_total", "Requests answered with a stored result for their idempotency key."
)
DROPPED_TOTAL = Counter(
    "scf_messages_dropped_total",
    "Messages settled without a reply or a dead letter (a handler crashed on a queue without dead "
    "letters, or a refusal nobody may hear about), by queue or reason.",
    ["queue"],
)

BUILD_INFO = Info("scf_build", "The running build: version and Python (value 1).")
BUILD_INFO.info(
    {
        "version": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }
)
