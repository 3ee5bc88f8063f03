"""The CSV connector's operation table: ingest (paged, or streamed to a sink), validate and preview.

Each handler gets the file (`CSVIngestionConnector.payload`) and calls the pure function of
`scf.connectors.parsing.csv` that does the work; none parses `data` or `parameters` by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from scf.connectors.operation_table import READ, Alias, Call, Operation, Traits, table
from scf.connectors.parsing.csv import (
    CsvIngestParameters,
    CsvOptions,
    CsvPreviewParameters,
    CsvSource,
    CsvValidateParameters,
    load_source,
    run_ingest,
    run_preview,
    run_validate,
)
from scf.connectors.sources import FileData
from scf.schemas.operation import OperationOutcome

if TYPE_CHECKING:
    from scf.connectors.csv_ingest.connector import CSVIngestionConnector

Options = TypeVar("Options", bound=CsvOptions)


async def _on_file(
    connector: CSVIngestionConnector,
    call: Call[FileData, Options],
    base64: bool,
    run: Callable[[CsvSource], OperationOutcome],
    *,
    lenient: bool = False,
) -> OperationOutcome:
    """Get the file, load it with the call's options and `run` a pure operation on it."""
    params, config = call.parameters, connector.config
    payload = await connector.payload(call.data, base64, call.request)
    return await connector.off_loop(
        payload, lambda: run(load_source(payload, params, config, lenient=lenient))
    )


async def ingest(
    connector: CSVIngestionConnector, call: Call[FileData, CsvIngestParameters]
) -> OperationOutcome:
    params, limits, token = call.parameters, connector.limits, call.page_token
    if params.sink is not None:
        return await connector.ingest_to_sink(call.data, params, params.sink, call.request)
    return await _on_file(
        connector, call, params.base64, lambda source: run_ingest(source, params, limits, token)
    )


async def validate(
    connector: CSVIngestionConnector, call: Call[FileData, CsvValidateParameters]
) -> OperationOutcome:
    params, limits = call.parameters, connector.limits
    return await _on_file(
        connector, call, params.base64, lambda source: run_validate(source, params, limits), lenient=True
    )


async def preview(
    connector: CSVIngestionConnector, call: Call[FileData, CsvPreviewParameters]
) -> OperationOutcome:
    params, limits, rows = call.parameters, connector.limits, connector.config.preview_rows
    return await _on_file(
        connector, call, params.base64, lambda source: run_preview(source, params, limits, rows)
    )


OPERATIONS = table(
    Operation(
        "ingest",
        ingest,
        data=FileData,
        parameters=CsvIngestParameters,
        # with `parameters.sink` it streams the whole file into an output connector: long, and a write
        traits=Traits(writes=True, long_running=True, pages=True),
        summary="records of the file, a page at a time (page_size, page_token), or all of them into a sink",
    ),
    Operation(
        "validate",
        validate,
        data=FileData,
        parameters=CsvValidateParameters,
        traits=READ,
        summary="a report of everything wrong with the file (ragged rows, headers, types, encoding)",
    ),
    Operation(
        "preview",
        preview,
        data=FileData,
        parameters=CsvPreviewParameters,
        traits=READ,
        summary="the first rows and a schema inferred over the leading rows",
        aliases=(Alias("parameters", "rows", "parameters", "preview_rows"),),
    ),
)
