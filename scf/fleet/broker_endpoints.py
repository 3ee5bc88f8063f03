"""Several broker endpoints for one fleet: the nodes of a RabbitMQ cluster, tried in turn.

`SCF_AMQP_URL` (and every client's `amqp_url`) may list several URLs separated by commas, e.g.
`amqp://scf:pw@rabbit-1:5672/scf,amqp://scf:pw@rabbit-2:5672/scf`. They must name the same login and
vhost (one fleet, one identity); a `,` inside a password is written `%2C`, as any reserved character
in a URL. The first connection goes to the first endpoint that accepts it. After a lost connection
or a failed attempt, each new attempt goes to the next endpoint in the list, round and round: a node
that died is left at once for the next one, without waiting for it to come back.

aio-pika connects to one URL only (mosquito/aio-pika#141). `RoundRobinConnection` is its robust
connection with the URL moved on before every reconnection attempt: aio-pika resets `transport` at
the start of each attempt, which is where the next endpoint is chosen.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from aio_pika import RobustConnection
from yarl import URL

#: More endpoints than this is a mistake (a cluster has 3, 5 or 7 nodes).
MAX_ENDPOINTS = 16
SCHEMES = ("amqp", "amqps")


class BrokerUrlError(ValueError):
    """The broker URL (list) cannot be used; the message never quotes a password."""


def endpoints(value: str) -> list[str]:
    """The URLs of a broker URL list (one URL is a list of one), checked to name one login and vhost."""
    urls = [url.strip() for url in value.split(",") if url.strip()]
    if not urls:
        raise BrokerUrlError("no broker URL given")
    if len(urls) > MAX_ENDPOINTS:
        raise BrokerUrlError(f"{len(urls)} broker URLs: at most {MAX_ENDPOINTS}")
    seen: set[tuple[str, str]] = set()
    for position, url in enumerate(urls, 1):
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise BrokerUrlError(f"broker URL {position} is not an amqp:// or amqps:// URL with a host")
        seen.add((login_of(url), vhost_of(url)))
    if len(seen) > 1:
        raise BrokerUrlError("the broker URLs must name the same user and vhost")
    return urls


def first(value: str) -> str:
    """The first URL of a list (the whole value if it is one URL)."""
    return value.split(",", 1)[0].strip()


def login_of(url: str) -> str:
    """The login of a broker URL (or of the first in a list): who the broker says the caller is."""
    return unquote(urlsplit(first(url)).username or "guest")


def vhost_of(url: str) -> str:
    """The vhost as aio-pika reads it: the path without its `/` (`/` alone, or none, is `/`)."""
    path = urlsplit(first(url)).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def masked(value: str) -> str:
    """The URL (or every URL of a list) with its password replaced: safe to print."""
    return ",".join(_masked_one(url.strip()) for url in value.split(","))


def _masked_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:  # an unparsable port or bracket: show nothing of the netloc
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RoundRobinConnection(RobustConnection):
    """A robust connection over several endpoints; `start` is where the first attempt goes."""

    def __init__(self, urls: list[str], start: int = 0, **kwargs: Any) -> None:
        self._urls = [URL(url) for url in urls]
        self._index = start % len(self._urls)
        self._attempted = False
        #: time.monotonic() of the last (re)connection (`amqp.publish` reads it after a nack)
        self.connected_at: float | None = None
        super().__init__(self._urls[self._index], **kwargs)
        self._attempted = False  # the constructor's own reset of `transport` is not an attempt

    @property
    def url(self) -> URL:
        return self._urls[self._index]

    @url.setter
    def url(self, value: URL) -> None:  # aio-pika sets it at construction and on `update_secret`
        if hasattr(self, "_urls"):
            self._urls[self._index] = value

    @property
    def transport(self) -> Any:
        return self.__dict__.get("_transport")

    @transport.setter
    def transport(self, value: Any) -> None:
        if value is None and not getattr(self, "_close_called", True):
            if self._attempted:  # every attempt after the first goes to the next endpoint
                self._index = (self._index + 1) % len(self._urls)
            self._attempted = True
        self.__dict__["_transport"] = value

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self.connected_at = time.monotonic()

    @property
    def endpoint(self) -> str:
        """The endpoint in use (or being tried), password masked."""
        return masked(str(self.url))
