"""What every blocking operation gets: the SDK client, the connector's bucket, its names and its limits.

A `Plan` is an operation whose request was fully checked on the event loop; calling it does the I/O and
runs in the connector's thread pool. `Planner`s turn a request into a plan or refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minio import Minio

from scf.connectors.minio.names import ObjectNames
from scf.connectors.operation_table import Call
from scf.schemas.operation import OperationOutcome


@dataclass(frozen=True)
class Store:
    sdk: Minio
    bucket: str
    names: ObjectNames
    region: str | None
    max_object_bytes: int
    max_ingest_bytes: int
    part_size: int


Plan = Callable[[], OperationOutcome]
#: Turns a parsed request into a plan, checking what the models cannot (keys, names) before any I/O.
Planner = Callable[[Store, Call[Any, Any]], Plan]


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
