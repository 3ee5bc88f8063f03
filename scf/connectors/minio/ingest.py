"""`ingest`: read an object inside the worker and hand it to a parser, so large files travel by reference.

The caller names a key; the bytes go from the store to the CSV connector's own `ingest` in this process
(never through a message), and only the parsed page comes back. Paging works as in the CSV connector:
send the same request with `page_token`; the token is bound to the object's content, so a page of a
changed object is refused. PDF objects go to the PDF connector's `ingest` the same way.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from scf.connectors.base import ServiceConnector
from scf.connectors.csv_ingest import CSVIngestionConnector
from scf.connectors.minio.reads import read_object
from scf.connectors.minio.requests import IngestParameters, parse
from scf.connectors.minio.store import Store
from scf.connectors.pdf import PDFIngestionConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest

Format = Literal["csv", "pdf"]

FORMATS_BY_EXTENSION: dict[str, Format] = {".csv": "csv", ".tsv": "csv", ".pdf": "pdf"}


def object_format(key: str, declared: Format | None) -> Format:
    """The parser for an object: the declared format, else the key's extension."""
    if declared is not None:
        return declared
    extension = key[key.rfind(".") :].lower() if "." in key.rsplit("/", 1)[-1] else ""
    found = FORMATS_BY_EXTENSION.get(extension)
    if found is None:
        raise PermanentError(
            "cannot tell the object's format from its key; give parameters.format ('csv' or 'pdf')",
            code=ErrorCode.INVALID_REQUEST,
        )
    return found


@dataclass(frozen=True)
class IngestPlan:
    """A checked ingest request: which object, and what the parser gets besides the bytes."""

    name: str
    format: Format
    parser_parameters: dict[str, Any]
    page_token: str | None
    timeout: float | None


def plan_ingest(store: Store, request: OperationRequest) -> IngestPlan:
    params = parse(IngestParameters, request.parameters, "parameters")
    name = store.names.full(params.key)
    kind = object_format(params.key, params.format)
    return IngestPlan(name, kind, params.parser_parameters(), request.page_token, request.timeout)


def fetch_encoded(store: Store, name: str) -> tuple[str, dict[str, Any]]:
    """Blocking: the object as base64 (the CSV connector's binary form) and its facts."""
    content, source = read_object(store, name, store.max_ingest_bytes, "max_ingest_bytes")
    return base64.b64encode(content).decode("ascii"), source


def parser_for(kind: Format, service_name: str, max_bytes: int) -> ServiceConnector:
    """An in-process CSV or PDF connector (no I/O of its own) whose size limit is the ingest limit."""
    connection = ServiceConnection(
        service_type=kind,
        service_name=f"{service_name[:124]}-{kind}",
        custom_config={"max_bytes": max_bytes},
    )
    return CSVIngestionConnector(connection) if kind == "csv" else PDFIngestionConnector(connection)


async def parse_object(
    parser: ServiceConnector, plan: IngestPlan, encoded: str, source: dict[str, Any]
) -> OperationOutcome:
    request = OperationRequest(
        operation="ingest",
        data_format="base64",
        data={"file_data": encoded},
        parameters=plan.parser_parameters,
        page_token=plan.page_token,
        timeout=plan.timeout,
    )
    outcome = await parser.execute(request)
    result = {**outcome.result_data, "source": source}
    return outcome.model_copy(update={"result_data": result})
