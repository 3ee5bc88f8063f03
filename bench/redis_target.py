"""Where a benchmark's fleet keeps its state in Redis, without ever flushing data a user keeps.

By default a private `redis-server` on a free loopback port (the same binary and settings as the
machine's: no persistence), deleted at the end, so the run starts empty and cleans up by construction.
With `--redis-url` the named database is used only if it is EMPTY, checked and claimed in one atomic
script; at the end it is flushed only if the claim key is still ours (nobody flushed or took it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import redis

from tests.support.private_services import PrivateRedis

CLAIM_KEY = "scf-bench:claimed-by"
# Claim only an empty database: DBSIZE and SET in one script, so no write can slip in between.
_CLAIM = "if redis.call('DBSIZE') == 0 then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0"
# Flush only a database still carrying our claim (a user who took it over keeps what they wrote).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('FLUSHDB') return 1 end return 0"


class RedisNotEmptyError(RuntimeError):
    """The database named with `--redis-url` holds keys: a benchmark will not use (or flush) it."""


@dataclass
class BenchRedis:
    """The Redis database URL a benchmark gives its fleet; `close()` undoes only what it made."""

    url: str
    _server: PrivateRedis | None = None
    _token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def open(cls, url: str | None) -> BenchRedis:
        if url is None:
            server = PrivateRedis().start()
            return cls(server.url, server)
        target = cls(url)
        client = redis.Redis.from_url(url, socket_timeout=10)
        try:
            if not client.eval(_CLAIM, 1, CLAIM_KEY, target._token):
                raise RedisNotEmptyError("the --redis-url database is not empty: name an empty one")
        finally:
            client.close()
        return target

    @property
    def pid(self) -> int | None:
        """The private redis-server's pid (None with --redis-url: that server is not ours to measure)."""
        return self._server.pid if self._server is not None else None

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            return
        client = redis.Redis.from_url(self.url, socket_timeout=10)
        try:
            client.eval(_RELEASE, 1, CLAIM_KEY, self._token)
        finally:
            client.close()
