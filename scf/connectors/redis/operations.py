"""Every Redis operation's row, gathered from the family modules (one table, no duplicates)."""

from __future__ import annotations

from collections.abc import Mapping

from scf.connectors.operation_table import Operation, table
from scf.connectors.redis import hashes, lists, sessions, sets, streams, strings
from scf.connectors.redis.context import Runner

OPERATIONS: Mapping[str, Operation[Runner]] = table(
    strings.ROWS, hashes.ROWS, lists.ROWS, sets.ROWS, streams.ROWS, sessions.ROWS
)
