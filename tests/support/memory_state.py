"""A StateStore double of our own: the registry, live workers and operation claims, in memory.

It implements the StateStore methods the dispatcher's request handler calls on its hot path (routing,
claims) and the control plane's reads it is asked for; a method it lacks fails loudly (AttributeError),
so a test never passes by touching state the double does not model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scf.fleet.state import RegistryEntry
from scf.schemas.errors import ConfigurationError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationResult, owner_matches


class NoRedis:
    """What stores built on the double get as its connection: any use fails, naming what was asked."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the state double models no Redis client (asked for {name!r})")


@dataclass
class MemoryState:
    entries: dict[str, RegistryEntry] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)  # service type -> live workers
    claims: dict[str, str] = field(default_factory=dict)  # operation id -> identity
    results: dict[str, OperationResult] = field(default_factory=dict)  # operation id -> stored result
    #: While set, every call fails as Redis being away does.
    down: bool = False
    redis: Any = field(default_factory=NoRedis)

    def add(self, name: str, service_type: str, *, version: int = 1, paused: bool = False) -> None:
        self.entries[name] = RegistryEntry(name, service_type, version, paused)
        self.workers.setdefault(service_type, 1)

    def _up(self) -> None:
        if self.down:
            raise TransientError(
                "the fleet's state store (Redis) is unavailable", code=ErrorCode.STATE_UNAVAILABLE
            )

    async def routing_entry(self, name: str, type_hint: str | None = None) -> tuple[RegistryEntry, int]:
        self._up()
        entry = self.entries.get(name)
        if entry is None:
            raise ConfigurationError(f"connector {name!r} not found", code=ErrorCode.CONNECTOR_NOT_FOUND)
        return entry, self.workers.get(entry.service_type, 0)

    async def live_workers(self, service_type: str) -> int:
        self._up()
        return self.workers.get(service_type, 0)

    async def claim_operation(self, operation_id: str, identity: str, ttl: int) -> bool:
        self._up()
        holder = self.claims.setdefault(operation_id, identity)
        return holder == identity

    async def release_operation(self, operation_id: str, identity: str) -> None:
        self._up()
        if self.claims.get(operation_id) == identity:
            del self.claims[operation_id]

    async def get_result(self, operation_id: str, owner: str | None = None) -> OperationResult:
        self._up()
        theirs = owner is not None and not owner_matches(owner, self.claims.get(operation_id, ""))
        if operation_id not in self.results or theirs:
            raise PermanentError(f"no stored result for {operation_id!r}", code=ErrorCode.RESULT_NOT_FOUND)
        return self.results[operation_id]
