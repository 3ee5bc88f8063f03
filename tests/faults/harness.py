"""The fault suite's load generator and checker.

`Load` sends numbered insert operations through the fleet (optionally with idempotency keys) and records
what came back for each: the reply's status and error code, or nothing. `check` then classifies every
request from the effects actually found in PostgreSQL (the table has no unique constraint, so a repeated
effect stays visible as a second row), the replies, the results the fleet stored by operation id, and
the dead letters:

* ok: the caller was told success and the row is there once; or told a typed failure and no row exists
* duplicated: the row is there more than once
* lost: no final outcome at all, or success was reported and no row exists
* unexpected: a failure was reported but the row exists, or a code outside the scenario's allowed ones
* dead_lettered: kept in the dead letters (and answered as such), no row
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from scf.fleet.client import FleetClient
from scf.schemas.control import MessageType
from scf.schemas.errors import ConnectorError
from scf.schemas.operation import OperationResult

#: Failures a caller may legitimately be told while a dependency is down (nothing was written).
OUTAGE_CODES = frozenset(
    {
        "CONNECTION_FAILED",
        "TIMEOUT",
        "DEADLINE_EXCEEDED",
        "CIRCUIT_OPEN",
        "STATE_UNAVAILABLE",
        "NO_WORKER",
        "IN_PROGRESS",
    }
)


#: How often a caller asks again after IN_PROGRESS before it takes that as the answer.
IN_PROGRESS_ASKS = 5


@dataclass
class Sent:
    index: int
    operation_id: str
    key: str | None
    code: str | None = None  # "success", an error code, or None when no reply came
    replayed: bool = False
    stored: str | None = None  # what `operation.result` says afterwards, when no reply came
    asked_again: int = 0  # times the fleet answered IN_PROGRESS and the caller asked again
    answered_at: float | None = None  # time.monotonic() of the last reply


@dataclass
class Verdict:
    ok: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    dead_lettered: list[int] = field(default_factory=list)
    replies: Counter[str] = field(default_factory=Counter)
    asked_again: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "ok": len(self.ok),
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "unexpected": len(self.unexpected),
            "dead_lettered": len(self.dead_lettered),
            "replies": dict(self.replies),
            "asked_again_after_in_progress": self.asked_again,
        }


def record(sent: Sent, result: OperationResult) -> None:
    sent.code = "success" if result.error is None else result.error.code
    sent.replayed = result.replayed
    sent.answered_at = time.monotonic()


def recovery_seconds(sent: Iterable[Sent], since: float) -> float:
    """Seconds from `since` (a fault) to the last reply that was not a success (0: none failed)."""
    failed = [s.answered_at for s in sent if s.answered_at and s.answered_at >= since and s.code != "success"]
    return round(max(failed) - since, 2) if failed else 0.0


class Load:
    """Numbered inserts into `table` through `service`, keyed or not, at a bounded concurrency."""

    def __init__(
        self, client: FleetClient, service: str, table: str, *, keyed: bool, timeout: float = 20
    ) -> None:
        self.client = client
        self.service = service
        self.table = table
        self.keyed = keyed
        self.timeout = timeout
        self.run_id = uuid.uuid4().hex[:8]
        self.sent: list[Sent] = []

    def request(self, sent: Sent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "operation": "insert",
            "operation_id": sent.operation_id,
            "data": {"table_name": self.table, "records": [{"req": sent.index, "run": self.run_id}]},
            "timeout": self.timeout,
        }
        if sent.key is not None:
            body["idempotency_key"] = sent.key
        return body

    def prepare(self, count: int, start: int = 0) -> list[Sent]:
        batch = [
            Sent(i, f"op_{self.run_id}_{i}", f"key_{self.run_id}_{i}" if self.keyed else None)
            for i in range(start, start + count)
        ]
        self.sent.extend(batch)
        return batch

    async def send(self, sent: Sent, client: FleetClient | None = None) -> None:
        """One call; a client-side failure (no reply in time, could not publish) records nothing.

        IN_PROGRESS says "another delivery of this key is running, ask again": the caller does, as a
        real one would, a few times.
        """
        body = {"service_name": self.service, **self.request(sent)}
        for _ in range(IN_PROGRESS_ASKS):
            try:
                reply = await (client or self.client).rpc.call(
                    MessageType.OPERATION_EXECUTE,
                    body,
                    timeout=self.timeout + 10,
                    message_id=sent.operation_id,
                )
            except ConnectorError:
                return  # no reply: the checker looks for a stored result
            result = OperationResult.model_validate(reply)
            record(sent, result)
            if result.error is None or result.error.code != "IN_PROGRESS":
                return
            sent.asked_again += 1
            await asyncio.sleep(result.error.retry_after or 1.0)

    async def run(self, count: int, concurrency: int, *, pace: float = 0.0) -> list[Sent]:
        batch = self.prepare(count)
        queue: asyncio.Queue[Sent] = asyncio.Queue()
        for sent in batch:
            queue.put_nowait(sent)

        async def lane() -> None:
            while not queue.empty():
                await self.send(queue.get_nowait())
                if pace:
                    await asyncio.sleep(pace)

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return batch


async def effects(pg_dsn: str, table: str, run_id: str) -> Counter[int]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(f"SELECT req, count(*) AS n FROM {table} WHERE run = $1 GROUP BY req", run_id)
    finally:
        await conn.close()
    return Counter({int(r["req"]): int(r["n"]) for r in rows})


async def settle_missing(client: FleetClient, sent: Iterable[Sent], wait: float = 30.0) -> None:
    """For requests without a reply, ask the fleet for the stored result (retrying until `wait`)."""
    missing = [s for s in sent if s.code is None]
    deadline = time.monotonic() + wait
    while missing and time.monotonic() < deadline:
        for s in missing:
            try:
                stored = await client.get_result(s.operation_id)
            except ConnectorError:
                continue
            s.stored = "success" if stored.error is None else stored.error.code
        missing = [s for s in missing if s.stored is None]
        if missing:
            await asyncio.sleep(1.0)


async def dead_letter_ids(client: FleetClient) -> set[str]:
    page = await client.dead_letters(limit=1000)
    return {d.operation_id for d in page.dead_letters if d.operation_id}


def check(
    sent: Iterable[Sent], found: Counter[int], dead: set[str], allowed: frozenset[str] = OUTAGE_CODES
) -> Verdict:
    verdict = Verdict()
    for s in sent:
        outcome = s.code or s.stored
        verdict.replies[outcome or "none"] += 1
        verdict.asked_again += s.asked_again
        n = found.get(s.index, 0)
        if n > 1:
            verdict.duplicated.append(s.index)
        elif s.operation_id in dead or outcome == "DEAD_LETTERED":
            (verdict.dead_lettered if n == 0 else verdict.unexpected).append(s.index)
        elif outcome is None:
            verdict.lost.append(s.index)
        elif outcome == "success":
            (verdict.ok if n == 1 else verdict.lost).append(s.index)
        elif n == 0 and outcome in allowed:
            verdict.ok.append(s.index)
        else:
            verdict.unexpected.append(s.index)
    return verdict


async def during(load: Awaitable[Any], fault: Callable[[], Awaitable[None]]) -> None:
    """Run `fault` while `load` is in flight; both must finish."""
    task = asyncio.ensure_future(load)
    await fault()
    await task
