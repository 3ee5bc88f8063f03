"""The dispatcher's door (docs/access-control.md): the permission each call needs, and the caller's quota.

Control-plane calls are checked here, where they are answered. `operation.execute` is checked by the
worker that runs it (it knows the operation's traits, and the fast path reaches it without a
dispatcher); here it only pays its quota. A call from a trusted forwarder was charged at its first door.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from scf.connectors.egress import widens  # a guard widened beyond the egress policy: connectors:admin
from scf.dispatcher.routing import Decoded
from scf.fleet.access import AccessControl
from scf.fleet.state import StateStore
from scf.schemas.access import Permission, Principal
from scf.schemas.control import MessageType

#: The permission each call answered (or routed) by the dispatcher needs. None: any authenticated
#: principal (the call is scoped to what the principal owns, e.g. its stored results).
NEEDS: dict[MessageType, Permission | None] = {
    MessageType.CONNECTOR_CREATE: Permission.CONNECTORS_WRITE,
    MessageType.CONNECTOR_UPDATE: Permission.CONNECTORS_WRITE,
    MessageType.CONNECTOR_DELETE: Permission.CONNECTORS_WRITE,
    MessageType.CONNECTOR_PAUSE: Permission.CONNECTORS_WRITE,
    MessageType.CONNECTOR_RESUME: Permission.CONNECTORS_WRITE,
    MessageType.CONNECTOR_GET: Permission.CONNECTORS_READ,
    MessageType.CONNECTOR_LIST: Permission.CONNECTORS_READ,
    MessageType.CONNECTOR_STATUS: Permission.CONNECTORS_READ,
    MessageType.CONNECTOR_TEST: Permission.CONNECTORS_READ,
    MessageType.CONNECTOR_METRICS: Permission.METRICS_READ,
    MessageType.FLEET_METRICS: Permission.METRICS_READ,
    MessageType.DLQ_LIST: Permission.DEAD_LETTERS_READ,
    MessageType.DLQ_REPLAY: Permission.DEAD_LETTERS_WRITE,
    MessageType.DLQ_PURGE: Permission.DEAD_LETTERS_WRITE,
    MessageType.OPERATION_RESULT: None,
    MessageType.OPERATION_CANCEL: None,
    MessageType.OPERATION_EXECUTE: None,  # the worker checks execute:read|write on the connector
}


CHANGES = (MessageType.CONNECTOR_CREATE, MessageType.CONNECTOR_UPDATE)
#: Charges one request to a principal's quota; raises RATE_LIMITED (set when quotas are wired).
Charge = Callable[[Principal], Awaitable[None]]


class Gate:
    def __init__(self, access: AccessControl, state: StateStore, charge: Charge | None = None) -> None:
        self.access = access
        self.state = state
        self.charge = charge

    async def admit(
        self, principal: Principal | None, message: AbstractIncomingMessage, call: Decoded
    ) -> None:
        """Refuse (typed) unless `principal` may make `call`; charge its quota at its first door."""
        if principal is None:
            return
        if self.charge is not None and not self.access.forwarded(message):
            await self.charge(principal)
        needed = NEEDS[call.message_type]
        if needed is not None:
            self.access.require(principal, needed)
        if call.message_type in CHANGES and widens(call.body):
            self.access.require(principal, Permission.CONNECTORS_ADMIN)
