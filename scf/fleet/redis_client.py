"""The fleet's Redis client: one server (`SCF_REDIS_URL`) or a replicated set behind Redis Sentinel.

With `SCF_REDIS_SENTINELS` set (`host:port` entries separated by commas), the sentinels are asked which
server is the primary of `SCF_REDIS_SENTINEL_SERVICE`, and every new connection asks again: after a
failover the client reaches the promoted replica without a restart. `SCF_REDIS_URL` then gives only
the login, password, database and TLS (`rediss://`); its host is not used. While the sentinels elect a
new primary, commands fail as they do while a single Redis restarts (`STATE_UNAVAILABLE`, retried
by the callers that retry), and a command sent to the old primary after it came back as a replica is
refused as read-only, which drops that connection so the next one finds the new primary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # redis is the `fleet` extra's: the settings (and so the clients) parse without it
    import redis.asyncio as aioredis

#: Timeouts of every Redis call: the fleet's state calls are small; a dead server must not hold a request.
SOCKET_TIMEOUT = 5
HEALTH_CHECK_INTERVAL = 15
MAX_SENTINELS = 16
#: Connections one process keeps to Redis at most; a call beyond them waits for a free one (up to
#: SOCKET_TIMEOUT) instead of failing: redis-py's default pool refuses the 101st concurrent call ("Too
#: many connections"), which a dispatcher's first burst of 64 new-route calls, two Redis calls each, met.
POOL_SIZE = 64


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (IPv6 as `[::1]:26379`); the port defaults to Sentinel's 26379."""
    addresses: list[tuple[str, int]] = []
    for entry in (item.strip() for item in value.split(",")):
        if not entry:
            continue
        host, port = entry, 26379
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            if rest:
                port = _port(rest.removeprefix(":"), entry)
        elif entry.count(":") == 1:
            host, raw = entry.split(":")
            port = _port(raw, entry)
        if not host:
            raise ValueError(f"sentinel {entry!r} names no host")
        addresses.append((host, port))
    if len(addresses) > MAX_SENTINELS:
        raise ValueError(f"{len(addresses)} sentinels: at most {MAX_SENTINELS}")
    return addresses


def _port(raw: str, entry: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5) or not 0 < int(raw) < 65536:
        raise ValueError(f"sentinel {entry!r} has no valid port")
    return int(raw)


def connect(
    url: str, *, sentinels: str = "", service: str = "scf", sentinel_password: str | None = None
) -> aioredis.Redis:
    """A client (no I/O yet) for the server at `url`, or for `service`'s primary found by `sentinels`."""
    import redis.asyncio as aioredis
    from redis.asyncio.connection import BlockingConnectionPool, SSLConnection, parse_url
    from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

    class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
        """Sentinel's pool (finds the primary) with the blocking pool's wait for a free connection."""

    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
    }
    pooled: dict[str, Any] = {"max_connections": POOL_SIZE, "timeout": SOCKET_TIMEOUT}
    addresses = sentinel_addresses(sentinels)
    if not addresses:
        pool = BlockingConnectionPool.from_url(url, **common, **pooled)
        return aioredis.Redis(connection_pool=pool)
    parsed = parse_url(url)
    login: dict[str, Any] = {
        key: parsed[key] for key in ("username", "password", "db") if parsed.get(key) is not None
    }
    if parsed.get("connection_class") is SSLConnection:
        login["ssl"] = True
    watchers = Sentinel(  # type: ignore[no-untyped-call]
        addresses,
        sentinel_kwargs={
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            **({"password": sentinel_password} if sentinel_password else {}),
        },
    )
    client: aioredis.Redis = watchers.master_for(
        service, connection_pool_class=BlockingSentinelPool, **common, **login, **pooled
    )
    return client
