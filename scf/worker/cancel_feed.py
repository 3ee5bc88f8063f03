"""Keeping a worker's memory of cancels whole: events while subscribed, Redis for what was missed.

Events published while the subscription is down are lost: from then every id is suspect (asked about
in Redis) until the cancel marks in Redis were read again (`sync`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from scf.fleet.state import StateStore
from scf.schemas.errors import ConnectorError
from scf.worker.cancels import RecentCancels

log = structlog.get_logger(__name__)


class CancelFeed:
    def __init__(self, state: StateStore, cancels: RecentCancels, limit: int) -> None:
        self.state = state
        self.cancels = cancels
        self.limit = limit
        self.subscribed = False  # the cancel events reach us (else every id is checked in Redis)
        self._syncing: set[asyncio.Task[None]] = set()

    def watch(self, connection: AbstractRobustConnection, channel: AbstractChannel) -> None:
        """Suspect every id whenever the connection or channel drops; re-sync once they are back."""
        self.subscribed = True
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)
        channel.close_callbacks.add(self._lost)
        reopened = getattr(channel, "reopen_callbacks", None)
        if reopened is not None:
            reopened.add(self._back)

    @property
    def needs_sync(self) -> bool:
        return self.subscribed and self.cancels.needs_sync

    def _lost(self, *_: Any) -> None:
        self.subscribed = False
        self.cancels.missed_events()

    def _back(self, *_: Any) -> None:
        self.subscribed = True
        task = asyncio.get_running_loop().create_task(self.sync(), name="cancel-sync")
        self._syncing.add(task)
        task.add_done_callback(self._syncing.discard)

    async def sync(self) -> None:
        """Remember every cancel mark in Redis (set before we heard events); then events suffice."""
        generation = self.cancels.begin_sync()
        try:
            marks = await self.state.cancel_marks(self.limit)
        except ConnectorError as exc:
            log.warning("cancel_sync_failed", code=exc.code)
            self.cancels.give_up_sync(time.time())
            return
        if len(marks) >= self.limit:  # more than we may remember: keep asking Redis about every id
            log.warning("cancel_sync_overflow", marks=len(marks))
            self.cancels.give_up_sync(time.time())
            return
        self.cancels.synced(marks, time.time(), generation)
