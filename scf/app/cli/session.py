"""What every client command shares: the broker URL, the output format, the timeouts, and one way to
call the fleet that turns every failure into one line (errors.py).

Before its call a command checks, in one round trip, that a dispatcher consumes `scf.requests`: a
vhost where no fleet ever ran, or a stopped fleet, is said at once instead of after a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

from scf.app.cli.errors import EXIT_INTERRUPTED, CliError, explain, no_fleet
from scf.app.cli.output import Format, emit

if TYPE_CHECKING:
    from scf.fleet.client import FleetClient

T = TypeVar("T")

#: Seconds a control call (list, get, status, pause...) waits for the fleet's reply by default.
CONTROL_TIMEOUT = 10.0
#: ... and a call that runs a connection test (create, update, test), which may take its own timeout.
TESTING_TIMEOUT = 60.0


@dataclass
class Session:
    output: Format | None = None
    timeout: float | None = None
    debug: bool = False
    url: str = field(default="")

    @property
    def amqp_url(self) -> str:
        if not self.url:
            from scf.fleet.settings import Settings

            self.url = Settings().amqp_url
        return self.url

    def emit(self, value: object) -> None:
        emit(value, self.output)

    def call(
        self,
        action: Callable[[FleetClient], Awaitable[T]],
        *,
        timeout: float = CONTROL_TIMEOUT,
        operation_timeout: float | None = None,
    ) -> T:
        """Connect, check a fleet is there, run `action`; any failure is one line (raised as CliError)."""
        wait = self.timeout or timeout
        url = self.amqp_url
        if not self.debug:
            quiet_libraries()

        async def go() -> T:
            from scf.fleet.client import FleetClient

            client = await FleetClient.connect(url, timeout=wait)
            async with client:
                await _fleet_is_there(client, url)
                if operation_timeout is not None:
                    client.timeout = operation_timeout
                return await action(client)

        try:
            return asyncio.run(go())
        except KeyboardInterrupt:
            raise CliError("interrupted", exit_code=EXIT_INTERRUPTED) from None
        except (click.ClickException, click.exceptions.Exit):
            raise
        except Exception as exc:
            if self.debug:
                raise
            raise explain(exc, url) from None


def session() -> Session:
    ctx = click.get_current_context()
    found = ctx.find_object(Session)
    return found if found is not None else ctx.ensure_object(Session)


async def _fleet_is_there(client: FleetClient, url: str) -> None:
    from aiormq.exceptions import ChannelAccessRefused, ChannelNotFoundEntity

    from scf.schemas import topology

    channel = await client.rpc.connection.channel()
    try:
        declared = await channel.declare_queue(topology.REQUEST_QUEUE, passive=True)
    except ChannelNotFoundEntity:
        raise no_fleet(url, " (no fleet has run in this vhost)") from None
    except ChannelAccessRefused:
        return  # this user may not look: the call itself will tell
    try:
        consumers = declared.declaration_result.consumer_count
    finally:
        if not channel.is_closed:
            await channel.close()
    if consumers == 0:
        raise no_fleet(url, " (no dispatcher is running)")


def quiet_libraries() -> None:
    """The broker client logs its reconnect attempts; at the terminal the one-line error says it all."""
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
