"""Every Redis operation by name, gathered from the family modules (one table, no duplicates)."""

from __future__ import annotations

from scf.connectors.redis import hashes, lists, sessions, sets, streams, strings
from scf.connectors.redis.context import Operation


def _gather(*tables: dict[str, Operation]) -> dict[str, Operation]:
    merged: dict[str, Operation] = {}
    for table in tables:
        clash = merged.keys() & table.keys()
        if clash:
            raise RuntimeError(f"operations declared twice: {sorted(clash)}")
        merged.update(table)
    return merged


OPERATIONS: dict[str, Operation] = _gather(
    strings.OPERATIONS,
    hashes.OPERATIONS,
    lists.OPERATIONS,
    sets.OPERATIONS,
    streams.OPERATIONS,
    sessions.OPERATIONS,
)
#: Operations that answer with `next_page_token` and accept `page_token`.
PAGED = frozenset({"scan", "xrange"})
