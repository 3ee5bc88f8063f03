"""One request convention for every connector, checked on the operations each connector declares.

`parameters` names what an operation acts on and how (table, index, collection, queue, key, page size,
options); `data` carries the payload (records, documents, vectors, messages, object bodies, file data).
Paged operations take `parameters.page_size` and answer `next_page_token`. docs/operations.md shows the
convention for every connector, one row per operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from scf.connectors.operation_table import Operation, PageParameters, Strict
from scf.connectors.registry import connector_class
from scf.schemas.plugins import built_in_types

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"

#: Names that say what an operation acts on or how to page: never in `data`.
TARGET_NAMES = frozenset(
    {
        "table",
        "table_name",
        "index",
        "collection",
        "collection_name",
        "queue",
        "exchange",
        "routing_key",
        "bucket",
        "endpoint",
        "api_endpoint",
        "page_size",
        "page_token",
        "size",
        "limit",
        "count",
        "max_keys",
        "query",
        "query_params",
        "batch_size",
        "on_conflict",
    }
)
#: Names of payloads: never in `parameters`.
PAYLOAD_NAMES = frozenset(
    {"records", "rows", "documents", "document", "vectors", "points", "messages", "file_data", "body"}
)
#: Old page-size spellings a paged operation must not take any more (they live on as aliases).
OLD_PAGE_NAMES = frozenset({"size", "limit", "count", "max_keys", "max_items"})

TYPES = sorted(built_in_types())


def table_of(service_type: str) -> dict[str, Operation[Any]]:
    return dict(connector_class(service_type).operation_table)


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize("service_type", TYPES)
def test_every_connector_declares_its_operations_as_data(service_type: str) -> None:
    cls = connector_class(service_type)
    assert cls.operation_table, f"{service_type} declares no operation table"
    assert cls.operations == frozenset(cls.operation_table)
    assert cls.read_operations == {n for n, op in cls.operation_table.items() if op.traits.reads}


@pytest.mark.parametrize("service_type", TYPES)
def test_targets_go_in_parameters_and_payloads_in_data(service_type: str) -> None:
    misplaced = []
    for name, operation in table_of(service_type).items():
        misplaced += [f"{name}: data.{f}" for f in fields(operation.data) & TARGET_NAMES]
        misplaced += [f"{name}: parameters.{f}" for f in fields(operation.parameters) & PAYLOAD_NAMES]
    assert misplaced == []


@pytest.mark.parametrize("service_type", TYPES)
def test_models_are_strict(service_type: str) -> None:
    loose = [
        f"{name}: {model.__name__}"
        for name, operation in table_of(service_type).items()
        for model in (operation.data, operation.parameters)
        if model.model_config.get("extra") != "forbid"
    ]
    assert loose == []
    assert all(issubclass(op.parameters, Strict) for op in table_of(service_type).values())


@pytest.mark.parametrize("service_type", TYPES)
def test_one_paging_vocabulary(service_type: str) -> None:
    wrong = []
    for name, operation in table_of(service_type).items():
        paged = issubclass(operation.parameters, PageParameters)
        if operation.traits.pages != paged:
            wrong.append(f"{name}: pages={operation.traits.pages} but PageParameters={paged}")
        if operation.traits.pages and fields(operation.parameters) & OLD_PAGE_NAMES:
            wrong.append(f"{name}: takes {sorted(fields(operation.parameters) & OLD_PAGE_NAMES)}")
    assert wrong == []


@pytest.mark.parametrize("service_type", TYPES)
def test_every_operation_has_a_row_in_the_convention_table(service_type: str) -> None:
    text = DOCS.read_text()
    rows = {
        line.split("|")[1].strip() + " " + line.split("|")[2].strip()
        for line in text.splitlines()
        if line.startswith("| `")
    }
    missing = [name for name in table_of(service_type) if f"`{service_type}` `{name}`" not in rows]
    assert missing == []


@pytest.mark.parametrize("service_type", TYPES)
def test_traits_are_published_with_schemas(service_type: str) -> None:
    for operation in table_of(service_type).values():
        described = operation.describe()
        assert described["data_schema"]["type"] == "object"
        assert described["parameters_schema"]["type"] == "object"
        assert set(described["traits"]) == {"reads", "writes", "idempotent", "long_running", "pages"}
