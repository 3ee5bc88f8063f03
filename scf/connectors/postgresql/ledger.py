"""The idempotency ledger: a keyed write records its key in the same transaction as its effect.

`claim` runs first inside the write's transaction. It inserts the key; a concurrent holder of the same
key makes it wait (the primary key's lock) until that transaction commits or rolls back. When the key
was already committed, the caller gets the stored outcome back (`replayed`) and changes nothing; the same
key with another payload is a `permanent` IDEMPOTENCY_CONFLICT. Because the key commits with the effect,
a worker killed between COMMIT and its AMQP ack leaves a key that makes the redelivery a replay.
Rows expire after `idempotency_ttl` seconds; `purge_expired` removes them at most once per interval.
"""

from __future__ import annotations

import time

from scf.connectors.postgresql.catalog import Conn
from scf.connectors.postgresql.coercion import json_text
from scf.connectors.postgresql.identifiers import qualified_name
from scf.connectors.postgresql.statements import bounded_transaction
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

PURGE_INTERVAL = 3600.0


class Ledger:
    """One ledger table (`schema.table`) shared by every connector writing to that database."""

    def __init__(self, schema: str, table: str, ttl: int) -> None:
        self.table = table
        self.name = qualified_name(schema, table)
        self.ttl = ttl
        self._ready = False
        self._purged_at = 0.0

    async def ensure(self, conn: Conn) -> None:
        """Create the table once per connector; an advisory lock serialises concurrent creators."""
        if self._ready:
            return
        async with bounded_transaction(conn, readonly=False, timeout=None):
            await conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))", self.name)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.name} ("
                "service_name text NOT NULL, idempotency_key text NOT NULL, "
                "request_digest text NOT NULL, outcome jsonb, "
                "created_at timestamptz NOT NULL DEFAULT pg_catalog.now(), "
                "PRIMARY KEY (service_name, idempotency_key))"
            )
        self._ready = True

    def forget(self) -> None:
        self._ready = False

    async def claim(self, conn: Conn, service: str, key: str, digest: str) -> OperationOutcome | None:
        """Inside the write's transaction: `None` when this call owns the key, else the stored outcome.

        Raises `permanent` IDEMPOTENCY_CONFLICT when the key was used for a different request.
        """
        claimed = await conn.fetchval(
            f"INSERT INTO {self.name} (service_name, idempotency_key, request_digest) "  # noqa: S608
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            service,
            key,
            digest,
        )
        if claimed:
            return None
        row = await conn.fetchrow(
            f"SELECT request_digest, outcome FROM {self.name} "  # noqa: S608
            "WHERE service_name = $1 AND idempotency_key = $2",
            service,
            key,
        )
        if row is None or row["outcome"] is None:  # pragma: no cover - a committed claim always has one
            raise PermanentError("the idempotency ledger row is incomplete", code=ErrorCode.INTERNAL)
        if row["request_digest"] != digest:
            raise PermanentError(
                "this idempotency_key was already used for a different request",
                code=ErrorCode.IDEMPOTENCY_CONFLICT,
            )
        stored = OperationOutcome.model_validate(row["outcome"])
        return stored.model_copy(update={"replayed": True})

    async def record(self, conn: Conn, service: str, key: str, outcome: OperationOutcome) -> None:
        await conn.execute(
            f"UPDATE {self.name} SET outcome = $3::jsonb "  # noqa: S608
            "WHERE service_name = $1 AND idempotency_key = $2",
            service,
            key,
            json_text(outcome.model_dump(mode="json", exclude={"replayed"})),
        )

    async def purge_expired(self, conn: Conn) -> None:
        now = time.monotonic()
        if now - self._purged_at < PURGE_INTERVAL:
            return
        self._purged_at = now
        async with bounded_transaction(conn, readonly=False, timeout=None):
            await conn.execute(
                f"DELETE FROM {self.name} "  # noqa: S608
                "WHERE created_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)",
                float(self.ttl),
            )
