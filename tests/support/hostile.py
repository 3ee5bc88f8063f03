"""Hostile-input corpora for connectors: a case, a breaker that opens on the first counted failure,
and the loop that runs every case followed by a normal request (tests/security/test_client_errors*.py).

Issue 11 item 3: a client-caused error classified `transient` is retried and counted by the fleet-wide
breaker, so a trickle of bad requests opens it for every caller. With `STRICT`, one miscounted case is
enough to see: the breaker opens (and the next case would answer CIRCUIT_OPEN).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from scf.connectors.circuit import BreakerPolicy, LocalBreakerBoard
from scf.factory import ServiceConnectorFactory
from scf.schemas.errors import ErrorCategory

#: Opens on the first failure that counts, and stays open: one miscounted case is enough to see.
STRICT = BreakerPolicy(window=600.0, min_failures=1, failure_rate=0.0, cooldown=600.0)
#: A secret placed in connector configs; no reply (nor log line, where the test checks) may show it.
CANARY = f"canary-{uuid.uuid4().hex[:12]}"
P, S = ErrorCategory.PERMANENT, ErrorCategory.SECURITY


@dataclass(frozen=True)
class Case:
    id: str
    operation: str
    data: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    category: ErrorCategory = P


def strict_factory() -> ServiceConnectorFactory:
    return ServiceConnectorFactory(breakers=LocalBreakerBoard(STRICT), retry_delay=0.01)


def body(case: Case) -> dict[str, Any]:
    return {"operation": case.operation, "data": case.data, "parameters": case.parameters, "timeout": 10}


async def refuse_every_case(
    factory: ServiceConnectorFactory, name: str, cases: list[Case], normal: dict[str, Any]
) -> list[str]:
    """Run each case, then a normal request; returns what went wrong (empty when all is well)."""
    wrong: list[str] = []
    for case in cases:
        result = await factory.execute_operation(name, body(case))
        error = result.error
        if error is None:
            wrong.append(f"{case.id}: succeeded")
        elif error.category is not case.category or error.retryable:
            wrong.append(f"{case.id}: {error.category.value} {error.code} {error.message[:80]!r}")
        if factory.breakers.state(name) != "closed":
            wrong.append(f"{case.id}: the breaker opened")
            return wrong
        if CANARY in result.model_dump_json():
            wrong.append(f"{case.id}: the secret canary is in the reply")
        after = await factory.execute_operation(name, normal)
        if after.status != "success":
            wrong.append(f"{case.id}: the next normal request failed: {after.error}")
    return wrong
