"""The CSV connector's operation table: ingest (paged, or streamed to a sink), validate and preview.

Each handler gets the file (`CSVIngestionConnector.payload`) and calls the pure function of
`scf.connectors.parsing.csv` that does the work; none parses `data` or `parameters` by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scf.connectors.operation_table import READ, Alias, Call, Operation, Traits, table
from scf.connectors.parsing.csv import (
    CsvIngestParameters,
    CsvPreviewParameters,
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

async def ingest(
    connector: CSVIngestionConnector, call: Call[FileData, CsvIngestParameters]
) -> OperationOutcome:
    params, request = call.parameters, call.request
    if params.sink is not None:
        return await connector.ingest_to_sink(call.data, params, params.sink, request)
    payload = await connector.payload(call.data, params, params.base64, request)
    config, limits, token = connector.config, connector.limits, call.page_token

    def work() -> OperationOutcome:
        return run_ingest(load_source(payload, params, config, lenient=False), params, limits, token)

    return await connector.off_loop(payload, work)


async def validate(
    connector: CSVIngestionConnector, call: Call[FileData, CsvValidateParameters]
) -> OperationOutcome:
    params = call.parameters
    payload = await connector.payload(call.data, params, params.base64, call.request)
    config, limits = connector.config, connector.limits
    return await connector.off_loop(
        payload, lambda: run_validate(load_source(payload, params, config, lenient=True), params, limits)
    )


async def preview(
    connector: CSVIngestionConnector, call: Call[FileData, CsvPreviewParameters]
) -> OperationOutcome:
    params = call.parameters
    payload = await connector.payload(call.data, params, params.base64, call.request)
    config, limits = connector.config, connector.limits
    return await connector.off_loop(
        payload,
        lambda: run_preview(
            load_source(payload, params, config, lenient=False), params, limits, config.preview_rows
        ),
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
