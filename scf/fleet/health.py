"""Connector health in Redis and the pure rule that turns check results into a health status.

Every connection test (at create, on demand, or by the health monitor) is recorded here. A connector
is healthy after a passing test, and unhealthy once its tests have failed without a pass for longer
than `SERVICE_TIMEOUT_THRESHOLD`; in between it keeps its previous status.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from redis.typing import EncodableT, FieldT

from scf.fleet import keys
from scf.fleet.state_errors import redis_errors, text_map
from scf.schemas.control import HealthState, HealthStatus
from scf.schemas.errors import ErrorInfo
from scf.schemas.operation import ConnectionTestResult

if TYPE_CHECKING:
    from scf.fleet.state import StateStore


def decide_status(state: HealthState, previous: HealthStatus, now: float, threshold: float) -> HealthStatus:
    if state.last_check_at is None:
        return "unknown"
    if state.consecutive_failures == 0:
        return "healthy"
    failing_since = state.last_ok_at if state.last_ok_at is not None else state.first_check_at
    if failing_since is not None and now - failing_since >= threshold:
        return "unhealthy"
    return previous


class HealthStore:
    def __init__(self, state: StateStore) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own

    async def record(self, result: ConnectionTestResult, now: float | None = None) -> HealthState:
        """Count one connection test and return the connector's updated health facts."""
        at = time.time() if now is None else now
        key = keys.health(result.service_name)
        ok = result.status == "success"
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "tests_total", 1)
            pipe.hincrby(key, "tests_passed", 1 if ok else 0)
            pipe.hsetnx(key, "first_check_at", at)
            fields: dict[FieldT, EncodableT] = {"last_check_at": at, "response_time": result.response_time}
            if ok:
                fields.update(last_ok_at=at, consecutive_failures=0, last_error="")
            else:
                pipe.hincrby(key, "consecutive_failures", 1)
                fields["last_error"] = result.error.model_dump_json() if result.error else ""
            pipe.hset(key, mapping=fields)
            pipe.hgetall(key)
            *_, raw = await pipe.execute()
        return health_of(text_map(raw))

    async def state(self, name: str) -> HealthState:
        async with redis_errors():
            raw = await self.redis.hgetall(keys.health(name))
        return health_of(text_map(raw))

    async def set_status(self, name: str, status: HealthStatus) -> None:
        async with redis_errors():
            await self.redis.hset(keys.health(name), "status", status)


def health_of(raw: dict[str, str]) -> HealthState:
    def number(field: str) -> float | None:
        return float(raw[field]) if raw.get(field) else None

    error = raw.get("last_error")
    status: HealthStatus = "unknown"
    if raw.get("status") == "healthy":
        status = "healthy"
    elif raw.get("status") == "unhealthy":
        status = "unhealthy"
    return HealthState(
        status=status,
        last_check_at=number("last_check_at"),
        last_ok_at=number("last_ok_at"),
        first_check_at=number("first_check_at"),
        response_time=number("response_time"),
        consecutive_failures=int(raw.get("consecutive_failures") or 0),
        last_error=ErrorInfo.model_validate_json(error) if error else None,
    )
