"""Which operations a worker must check Redis for a cancel mark before it runs them.

A cancel sets a mark in Redis and then publishes `operation.cancel.<id>` on `scf.events`, which every
worker hears. So a worker needs Redis only for an id it heard a cancel for (the mark decides: it may
have expired with its claim), for a redelivery, and while it may have missed events (before it
subscribed, after the broker connection dropped, or once this bounded memory had to forget an id
early); in those cases `suspect` answers True for every id until it is safe again.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from scf.schemas.operation import MAX_TIMEOUT_SECONDS

#: A request never runs after its absolute deadline, which is at most this far after it was sent:
#: a cancel heard longer ago than that cannot concern a request still waiting in a queue.
HORIZON = MAX_TIMEOUT_SECONDS + 60.0


class RecentCancels:
    def __init__(self, capacity: int, horizon: float = HORIZON) -> None:
        self.capacity = capacity
        self.horizon = horizon
        self._expiry: OrderedDict[str, float] = OrderedDict()  # insertion order == expiry order
        self._all_until = math.inf  # until the first sync, any id may have a cancel we never heard
        self._forgot_until = 0.0  # an id forgotten early would have mattered until then
        self._generation = 0  # bumped by every interruption, so a sync begun before one cannot end it

    def heard(self, operation_id: str, now: float) -> None:
        """A cancel event for `operation_id`."""
        self._expiry.pop(operation_id, None)
        self._expiry[operation_id] = now + self.horizon
        self._trim(now)

    def suspect(self, operation_id: str, now: float) -> bool:
        """Must Redis be asked whether `operation_id` was cancelled before it runs?"""
        if now < self._all_until or now < self._forgot_until:
            return True
        expiry = self._expiry.get(operation_id)
        return expiry is not None and now < expiry

    def missed_events(self) -> None:
        """The event subscription was interrupted: suspect everything until a sync begun after this."""
        self._generation += 1
        self._all_until = math.inf

    def begin_sync(self) -> int:
        """Call once subscribed, before reading Redis's marks; pass the answer to `synced`."""
        return self._generation

    def synced(self, marks: list[str], now: float, generation: int) -> None:
        """Every cancel mark Redis held when the sync began was read: trust the events again."""
        for operation_id in marks:
            self.heard(operation_id, now)
        if generation == self._generation:
            self._all_until = 0.0

    @property
    def needs_sync(self) -> bool:
        return self._all_until != 0.0

    def give_up_sync(self, now: float) -> None:
        """No sync possible (Redis away): suspect every id until a later sync succeeds (each check goes
        to Redis, which falls back as it always did), but no longer than a horizon."""
        self._all_until = now + self.horizon

    def _trim(self, now: float) -> None:
        while self._expiry:
            oldest, expiry = next(iter(self._expiry.items()))
            if expiry > now and len(self._expiry) <= self.capacity:
                return
            del self._expiry[oldest]
            if expiry > now:  # forgotten early: it may still matter, so every id is suspect for as long
                self._forgot_until = max(self._forgot_until, expiry)

    def __len__(self) -> int:
        return len(self._expiry)
