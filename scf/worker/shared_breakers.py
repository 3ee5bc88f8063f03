"""The circuit breakers shared by the whole fleet, in Redis (`scf:breaker:<endpoint>`).

Every worker counts outcomes into the same per-window counters, so the breaker opens after the fleet's
combined failures, and every worker sees it open within `refresh` seconds: the service stops being
hammered by all of them at once, not one by one. After the cooldown a single worker in the fleet wins the
probe (`SET NX` with a lease); its verdict closes or re-opens the breaker for everyone. When Redis cannot
be reached each worker falls back to its own local breaker (same policy) and leaves Redis alone for
`redis_backoff` seconds, so an outage of the state store never slows the calls themselves.

On the hot path a closed breaker costs no round trip: `admit` answers from a view at most `refresh`
seconds old (one fetch per endpoint at a time, however many calls wait), successes are counted here and
added to the shared window by `flush` (about once a second, which also refreshes the views), and only
failures and probes go to Redis at once, with this worker's unflushed successes, so a breaker still
opens fleet-wide on the failure that tips it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from scf.connectors.circuit import Admission, BreakerPolicy, LocalBreakerBoard, State
from scf.fleet import keys
from scf.fleet.metrics import BREAKER_STATE, BREAKER_TRANSITIONS
from scf.fleet.state_errors import delete_if_held

if TYPE_CHECKING:
    from scf.fleet.state import StateStore

log = structlog.get_logger(__name__)

_GAUGE: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}
#: A flush refreshes the views of endpoints called within this many seconds (not of every one ever seen).
_IDLE_VIEW = 60.0


@dataclass(frozen=True)
class _View:
    state: State
    opened_at: float
    fetched_at: float


class RedisBreakerBoard:
    def __init__(
        self,
        state: StateStore,
        owner: str,
        policy: BreakerPolicy | None = None,
        *,
        refresh: float = 0.5,
        probe_lease: float = 30.0,
        redis_backoff: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own
        self.owner = owner
        self.policy = policy or BreakerPolicy()
        self.refresh = refresh
        self.probe_lease = probe_lease
        self.clock = clock
        self.local = LocalBreakerBoard(self.policy, clock)
        self._views: dict[str, _View] = {}
        self.redis_backoff = redis_backoff
        self._degraded = False
        self._skip_redis_until = 0.0
        self._successes: dict[str, dict[int, int]] = {}  # endpoint -> window -> successes not yet in Redis
        self._fetching: dict[str, asyncio.Future[_View]] = {}
        self._used: dict[str, float] = {}  # endpoint -> when a call last asked for it

    def state(self, key: str) -> State:
        view = self._views.get(key)
        return view.state if view is not None else "closed"

    async def admit(self, key: str) -> Admission:
        now = self.clock()
        self._used[key] = now
        if now < self._skip_redis_until:
            return await self.local.admit(key)
        try:
            view = await self._view(key, now)
            if view.state == "closed":
                return Admission(True)
            if now - view.opened_at >= self.policy.cooldown and view.fetched_at < now:
                # About to bid for the probe: a view even a moment old may miss a probe that just
                # failed and re-opened the breaker (its lease is gone, so the bid would win).
                view = await self._view(key, now, fresh=True)
                if view.state == "closed":
                    return Admission(True)
            waited = now - view.opened_at
            if waited < self.policy.cooldown:
                return Admission(False, retry_after=self.policy.cooldown - waited)
            won = await self.redis.set(
                keys.breaker_probe(key), self.owner, nx=True, px=int(self.probe_lease * 1000)
            )
        except RedisError as exc:
            self._fell_back(exc)
            return await self.local.admit(key)
        self._recovered()
        if won:
            self._show(key, "half_open")
            return Admission(True, probe=True)
        return Admission(False, retry_after=min(1.0, self.policy.cooldown))

    async def record(self, key: str, ok: bool, probe: bool) -> None:
        now = self.clock()
        if now < self._skip_redis_until:
            await self.local.record(key, ok, probe)
            return
        if ok and not probe:
            windows = self._successes.setdefault(key, {})
            window = int(now // self.policy.window)
            windows[window] = windows.get(window, 0) + 1
            return
        try:
            if probe:
                await self._settle_probe(key, ok, now)
            else:
                await self._count_failure(key, now)
        except RedisError as exc:
            self._fell_back(exc)
            await self.local.record(key, ok, probe)
            return
        self._recovered()

    async def give_back(self, key: str) -> None:
        """Drop this worker's probe lease (only if it still holds it): the next caller, here or on any
        worker, bids for the probe at once instead of after the lease (`probe_lease`). Redis trouble
        leaves the lease to expire."""
        await self.local.give_back(key)
        if self.clock() < self._skip_redis_until:
            return
        try:
            await delete_if_held(self.redis, keys.breaker_probe(key), self.owner)
        except RedisError as exc:
            self._fell_back(exc)
            return
        self._recovered()
        log.info("breaker_probe_given_back", endpoint=key)

    async def flush(self) -> None:
        """Add the successes counted here to the shared windows and refresh every view, in one round
        trip. Redis trouble drops the successes (fewer successes only make a breaker quicker to open)."""
        now = self.clock()
        successes, self._successes = self._successes, {}
        for key in [k for k, used in self._used.items() if now - used > _IDLE_VIEW]:
            del self._used[key]  # not asked for lately: its view is fetched again when it is
            self._views.pop(key, None)
        endpoints = sorted(self._views)
        if now < self._skip_redis_until or not (successes or endpoints):
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                self._add_successes(pipe, successes)
                for key in endpoints:
                    pipe.hgetall(keys.breaker(key))
                replies = await pipe.execute()
        except RedisError as exc:
            self._fell_back(exc)
            return
        self._recovered()
        for key, raw in zip(endpoints, replies[len(replies) - len(endpoints) :], strict=True):
            self._set_view(key, raw, now)

    async def _view(self, key: str, now: float, *, fresh: bool = False) -> _View:
        cached = self._views.get(key)
        if cached is not None and now - cached.fetched_at < self.refresh and not fresh:
            return cached
        pending = self._fetching.get(key)
        if pending is not None:  # one fetch per endpoint at a time, however many calls wait for it
            await asyncio.wait([pending])
            if not pending.cancelled():
                return pending.result()
        future: asyncio.Future[_View] = asyncio.get_running_loop().create_future()
        self._fetching[key] = future
        try:
            raw = await self.redis.hgetall(keys.breaker(key))
            view = self._set_view(key, raw, now)
            future.set_result(view)
            return view
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved: the waiters (if any) raise it themselves
            raise
        finally:
            self._fetching.pop(key, None)
            if not future.done():  # cancelled (the worker is stopping): waiters fetch for themselves
                future.cancel()

    def _set_view(self, key: str, raw: Mapping[Any, Any], now: float) -> _View:
        state: State = "open" if _text(raw.get("state")) == "open" else "closed"
        view = _View(state, float(_text(raw.get("opened_at")) or 0.0), now)
        self._views[key] = view
        BREAKER_STATE.labels(key).set(_GAUGE[view.state])
        return view

    def _add_successes(self, pipe: Pipeline, successes: dict[str, dict[int, int]]) -> None:
        for key, windows in successes.items():
            for window, count in windows.items():
                slot = keys.breaker_window(key, window)
                pipe.hincrby(slot, "calls", count)
                pipe.expire(slot, int(self.policy.window * 2) + 1)

    async def _count_failure(self, key: str, now: float) -> None:
        window = keys.breaker_window(key, int(now // self.policy.window))
        successes = {key: self._successes.pop(key)} if key in self._successes else {}
        async with self.redis.pipeline(transaction=False) as pipe:
            self._add_successes(pipe, successes)
            pipe.hincrby(window, "calls", 1)
            pipe.hincrby(window, "failures", 1)
            pipe.expire(window, int(self.policy.window * 2) + 1)
            *_, calls, failures, _ = await pipe.execute()
        if not self.policy.should_open(int(calls), int(failures)):
            return
        opened = await self.redis.hsetnx(keys.breaker(key), "opened_at", repr(now))
        if opened:  # this worker tipped it: say so once
            await self.redis.hset(keys.breaker(key), "state", "open")
            BREAKER_TRANSITIONS.labels(key, "open").inc()
            log.warning("breaker_opened", endpoint=key, calls=int(calls), failures=int(failures))
        self._views.pop(key, None)

    async def _settle_probe(self, key: str, ok: bool, now: float) -> None:
        window = keys.breaker_window(key, int(now // self.policy.window))
        async with self.redis.pipeline(transaction=True) as pipe:
            if ok:
                pipe.delete(keys.breaker(key), window)
            else:
                pipe.hset(keys.breaker(key), mapping={"state": "open", "opened_at": repr(now)})
            pipe.delete(keys.breaker_probe(key))
            await pipe.execute()
        to: State = "closed" if ok else "open"
        self._views[key] = _View(to, now, now)
        self._show(key, to)
        BREAKER_TRANSITIONS.labels(key, to).inc()
        log.info("breaker_probe", endpoint=key, ok=ok, state=to)

    def _show(self, key: str, state: State) -> None:
        BREAKER_STATE.labels(key).set(_GAUGE[state])

    def _fell_back(self, exc: RedisError) -> None:
        self._skip_redis_until = self.clock() + self.redis_backoff
        if not self._degraded:
            log.warning("breaker_state_unavailable", fallback="local", error=type(exc).__name__)
        self._degraded = True

    def _recovered(self) -> None:
        if self._degraded:
            log.info("breaker_state_available")
        self._degraded = False


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
