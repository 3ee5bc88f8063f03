"""Ask a worker of a connector's type for a connection test: the real path, used by create and health.

The worker records the result in Redis itself; the caller gets the spec's test result, or the typed
error the worker (or the broker) answered with.
"""

from __future__ import annotations

import time

from scf.fleet.rpc import RpcClient, reply_error
from scf.schemas import topology
from scf.schemas.control import CheckEnvelope, MessageType
from scf.schemas.operation import ConnectionTestResult
from scf.schemas.validation import parse_model

#: How much longer the caller waits than the worker's own deadline, so a typed reply can still arrive.
REPLY_MARGIN_SECONDS = 2.0


async def check_through_worker(
    rpc: RpcClient, service_name: str, service_type: str, version: int, timeout: float
) -> ConnectionTestResult:
    """Raises typed errors: the worker's (e.g. CONNECTOR_NOT_FOUND), NO_WORKER, or TIMEOUT."""
    envelope = CheckEnvelope(
        service_name=service_name,
        service_type=service_type,
        connector_version=version,
        deadline=time.time() + timeout,
    )
    reply = await rpc.call(
        MessageType.CONNECTOR_TEST,
        envelope,
        timeout=timeout + REPLY_MARGIN_SECONDS,
        exchange=topology.OPS_EXCHANGE,
        routing_key=service_type,
    )
    if "service_name" not in reply:  # a FailedReply: the test could not run
        raise reply_error(reply)
    return parse_model(ConnectionTestResult, reply, "worker reply")
