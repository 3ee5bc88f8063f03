"""Quotas in Redis, shared by every gateway, dispatcher and worker (docs/access-control.md).

* Request rates per principal: GCRA (the generic cell rate algorithm, a token bucket kept as one
  timestamp), one atomic script on Redis's own clock, so every host agrees. A refusal says when a retry
  will be admitted (`retry_after`), and it is honest: the script computes exactly that moment.
* Concurrent operations per connector: a sorted set of leases scored by their expiry, so the slots of
  a worker that died come back when their lease runs out.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time

from redis.commands.core import AsyncScript

from scf.fleet import keys
from scf.fleet.state import StateStore
from scf.fleet.state_errors import redis_errors
from scf.schemas.access import Principal
from scf.schemas.errors import ErrorCode, ResourceError

# KEYS[1] the principal's theoretical arrival time (TAT, microseconds); ARGV: emission interval (us),
# burst tolerance (us), cost. Returns {allowed (1/0), retry after (us)}. The key lives until the bucket
# is full again (at most 30 days: a rate so slow it takes longer forgets its debt then).
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, allow_at - now}
end
local ttl = math.min(math.ceil((new_tat - now) / 1000) + 1000, 2592000000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, 0}
"""

# KEYS[1] the connector's leases (token -> expiry, us); ARGV: limit, lease (us), token.
_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) / 1000) + 1000)
return 1
"""


#: Charging ahead: at most 1/CREDIT_SHARE of a principal's burst per call, MAX_ADVANCE requests, kept
#: CREDIT_SECONDS (what is not used by then is lost: the quota errs on the side of admitting fewer).
CREDIT_SHARE = 100
MAX_ADVANCE = 16
CREDIT_SECONDS = 0.25
MAX_CREDITS = 10_000


def rate_limited(retry_after: float) -> ResourceError:
    """The refusal of a request over its principal's rate: `retry_after` seconds until one is admitted."""
    return ResourceError(
        f"rate limit exceeded: retry after {retry_after:.3f}s",
        code=ErrorCode.RATE_LIMITED,
        retry_after=retry_after,
    )


class RateLimiter:
    """Per-principal request rates (GCRA) on the fleet's one Redis connection."""

    def __init__(self, state: StateStore) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own
        self.state = state
        self._script: AsyncScript | None = None  # registered on first use
        self._credit: dict[str, tuple[int, float]] = {}  # principal -> (requests paid ahead, until)

    async def take(self, principal: str, *, rate: float, burst: int, cost: int = 1) -> float | None:
        """None when admitted (and counted), else the seconds until a request would be. `rate` <= 0:
        unlimited (no Redis call)."""
        if rate <= 0:
            return None
        interval = 1_000_000 / rate
        tolerance = interval * max(1, burst)  # burst requests at once from a rested principal
        key = keys.quota_rate(_key_part(principal))
        if self._script is None:
            self._script = self.state.script(_GCRA)
        async with redis_errors():
            allowed, wait_us = await self._script(keys=[key], args=[interval, tolerance, cost])
        return None if int(allowed) == 1 else max(0.001, int(wait_us) / 1_000_000)

    async def charge(self, principal: Principal) -> None:
        """Charge one request to `principal` at its own rate (the policy's) or refuse RATE_LIMITED.

        A principal with a large burst is charged in advance, several requests per Redis call (at most
        one in CREDIT_SHARE of its burst, kept CREDIT_SECONDS): paid tokens only ever go unused, so
        the quota is never exceeded; a small burst is charged one request at a time, exactly."""
        rate = principal.rate if principal.rate is not None else 0.0
        if rate <= 0:
            return
        burst = principal.burst or 1
        now = time.monotonic()
        held = self._credit.get(principal.name)
        if held is not None and held[0] > 0 and held[1] > now:
            self._credit[principal.name] = (held[0] - 1, held[1])
            return
        advance = min(MAX_ADVANCE, burst // CREDIT_SHARE)
        if advance > 1 and await self.take(principal.name, rate=rate, burst=burst, cost=advance) is None:
            if len(self._credit) >= MAX_CREDITS:
                self._credit.clear()
            self._credit[principal.name] = (advance - 1, now + CREDIT_SECONDS)
            return
        wait = await self.take(principal.name, rate=rate, burst=burst)
        if wait is not None:
            raise rate_limited(wait)


class ConcurrencyLimiter:
    """At most `limit` operations at once on a connector, across the fleet."""

    def __init__(self, state: StateStore) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own
        self.state = state
        self._acquire: AsyncScript | None = None  # registered on first use

    async def acquire(self, service_name: str, limit: int, *, lease: float) -> str | None:
        """A slot's token, or None when `limit` operations already hold one."""
        token = secrets.token_hex(8)
        lease_us = max(1000, math.ceil(lease * 1_000_000))
        if self._acquire is None:
            self._acquire = self.state.script(_ACQUIRE)
        async with redis_errors():
            won = await self._acquire(keys=[keys.quota_slots(service_name)], args=[limit, lease_us, token])
        return token if int(won) == 1 else None

    async def release(self, service_name: str, token: str) -> None:
        async with redis_errors():
            await self.redis.zrem(keys.quota_slots(service_name), token)


def _key_part(principal: str) -> str:
    """Any principal name as a short, safe key part."""
    return hashlib.sha256(principal.encode("utf-8", "backslashreplace")).hexdigest()[:32]
