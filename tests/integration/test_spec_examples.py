"""The spec's "Testing" and "Usage Examples" sections, run as written (import path adjusted: `scf`).

These use the in-process factory (embedded mode, no broker) against the real PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest

from scf import ServiceConnection, ServiceConnectorFactory
from scf.connectors import PostgreSQLOutputConnector

pytestmark = pytest.mark.integration

config = ServiceConnection(service_type="postgresql", service_name="test_db", host="localhost", port=5432)


def test_create_postgresql_connector() -> None:
    config = ServiceConnection(service_type="postgresql", service_name="test_db", host="localhost", port=5432)
    connector = PostgreSQLOutputConnector(config)
    assert connector.service_name == "test_db"


async def test_connection_test() -> None:
    connector = PostgreSQLOutputConnector(config)
    result = await connector.test_connection()
    assert result.status in ["success", "failed"]
    await connector.close()


async def test_data_pipeline() -> None:
    factory = ServiceConnectorFactory()
    operation_request = {"operation": "query", "data": {}, "parameters": {"query": "SELECT 1 AS one"}}

    # Create connector
    connector = await factory.create_connector(config)

    # Test connection
    test_result = await connector.test_connection()
    assert test_result.status == "success"

    # Execute operation
    result = await connector.execute_operation(operation_request)
    assert result.status == "success"
    await factory.close()


async def test_concurrent_operations() -> None:
    async with ServiceConnectorFactory() as factory:
        connector = await factory.create_connector(config)
        operation_requests = [
            {"operation": "query", "parameters": {"query": "SELECT $1::int AS n", "query_params": [i]}}
            for i in range(20)
        ]
        operations = [connector.execute_operation(op) for op in operation_requests]
        results = await asyncio.gather(*operations)
        assert all(result.status == "success" for result in results)


async def test_connection_pooling() -> None:
    async with ServiceConnectorFactory() as factory:
        # Create multiple concurrent connections
        connections = await asyncio.gather(*[factory.create_connector(config) for _ in range(5)])
        assert len(connections) == 5
        assert len({id(c) for c in connections}) == 1, "the same config shares one pooled connector"


async def test_basic_service_connection_and_query_usage_example() -> None:
    factory = ServiceConnectorFactory()
    pg_config = ServiceConnection(
        service_type="postgresql",
        service_name="analytics_db",
        host="localhost",
        port=5432,
        database="test",
        username="postgres",
        password="secure_password",
    )
    connector = await factory.create_connector(pg_config)
    assert connector.service_name == "analytics_db"

    query_operation = {
        "connection_id": "analytics_db",
        "operation": "query",
        "data": {},
        "parameters": {
            "query": "SELECT * FROM (VALUES (DATE '2024-01-02')) AS t(date) WHERE date >= $1",
            "query_params": ["2024-01-01"],
        },
    }
    result = await factory.execute_operation("analytics_db", query_operation)
    assert result.status == "success", result.error
    assert len(result.result_data["rows"]) == 1

    metrics = factory.get_metrics("analytics_db")
    assert (metrics.total_operations, metrics.successful_operations) == (1, 1)
    await factory.close()


async def test_csv_data_ingestion_pipeline_example() -> None:
    factory = ServiceConnectorFactory()
    await factory.create_connector(ServiceConnection(service_type="csv", service_name="data_ingest"))
    csv_content = "a,b\n1,x\n2,y\n"
    csv_operation = {
        "connection_id": "data_ingest",
        "operation": "ingest",
        "data": {"file_data": csv_content},
        "parameters": {"has_headers": True, "delimiter": ","},
    }

    result = await factory.execute_operation("data_ingest", csv_operation)

    assert result.records_processed == 2
    await factory.close()


async def test_factory_answers_unknown_connector_with_a_typed_failure() -> None:
    async with ServiceConnectorFactory() as factory:
        result = await factory.execute_operation("missing", {"operation": "query"})

    assert result.error is not None and result.error.code == "CONNECTOR_NOT_FOUND"
