"""Elasticsearch configuration, client arguments and request shapes: all checked before any network I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scf.connectors.elasticsearch import ElasticsearchConnector
from scf.connectors.elasticsearch.requests import DeleteParameters
from scf.connectors.elasticsearch.settings import client_settings
from scf.connectors.registry import connector_class
from scf.schemas.configs.elasticsearch import ElasticsearchConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCategory, PermanentError
from scf.schemas.operation import OperationRequest

API_KEY = "api-key-canary-61c0"
TOKEN = "bearer-canary-0b7e"
PASSWORD = "password-canary-3e19"


def es(**body: Any) -> ServiceConnection:
    return ServiceConnection.model_validate({"service_type": "elasticsearch", "service_name": "es", **body})


def refused(**body: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        ServiceConnection.parse({"service_type": "elasticsearch", "service_name": "es", **body})
    return caught.value.message


def test_the_registry_builds_this_connector() -> None:
    assert connector_class("elasticsearch") is ElasticsearchConnector


def test_nodes_come_from_host_port_and_ssl_enabled() -> None:
    plain = client_settings(es(host="es.local"), ElasticsearchConfig())
    secure = client_settings(es(host="es.local", port=9243, ssl_enabled=True), ElasticsearchConfig())
    ipv6 = client_settings(es(host="::1"), ElasticsearchConfig())

    assert plain.nodes == ("http://es.local:9200",)
    assert secure.nodes == ("https://es.local:9243",)
    assert ipv6.nodes == ("http://[::1]:9200",)


def test_hosts_win_and_several_nodes_fail_over_without_client_retries() -> None:
    settings = client_settings(
        es(host="ignored"), ElasticsearchConfig(hosts=["http://a:9200", "http://b:9200/", "http://c:9200"])
    )

    assert settings.nodes == ("http://a:9200", "http://b:9200", "http://c:9200")
    assert settings.kwargs["max_retries"] == 2  # only ever onto another node
    assert settings.kwargs["retry_on_status"] == ()
    assert settings.kwargs["retry_on_timeout"] is False


def test_a_single_node_is_never_retried_by_the_client() -> None:
    settings = client_settings(
        es(host="h", connection_timeout=7, connection_pool_size=3), ElasticsearchConfig()
    )

    assert settings.kwargs["max_retries"] == 0
    assert settings.request_timeout == 7
    assert settings.kwargs["connections_per_node"] == 3


@pytest.mark.parametrize(
    ("body", "method", "key"),
    [
        ({"username": "elastic", "password": PASSWORD}, "basic", "basic_auth"),
        ({"custom_config": {"api_key": API_KEY}}, "api_key", "api_key"),
        ({"custom_config": {"bearer_token": TOKEN}}, "bearer", "bearer_auth"),
        ({}, "none", None),
    ],
)
def test_each_authentication_method_reaches_the_client(
    body: dict[str, Any], method: str, key: str | None
) -> None:
    connection = es(host="h", **body)
    settings = client_settings(connection, ElasticsearchConfig.model_validate(connection.custom_config))

    assert settings.auth_method == method
    auth_keys = {"basic_auth", "api_key", "bearer_auth"} & set(settings.kwargs)
    assert auth_keys == ({key} if key else set())


def test_secrets_stay_out_of_reprs_and_public_views() -> None:
    connection = es(host="h", custom_config={"api_key": API_KEY})
    other = es(host="h", custom_config={"bearer_token": TOKEN})
    config = ElasticsearchConfig.model_validate(connection.custom_config)
    settings = client_settings(connection, config)

    shown = " ".join(
        [repr(config), str(config), repr(settings), str(connection.public_view()), str(other.public_view())]
    )
    assert API_KEY not in shown
    assert TOKEN not in shown


def test_tls_options_apply_to_https_nodes(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    secure = client_settings(
        es(host="h"), ElasticsearchConfig(hosts=["https://h:9200"], ca_certs=str(ca), verify_certs=False)
    )

    assert secure.kwargs["ca_certs"] == str(ca)
    assert secure.kwargs["verify_certs"] is False
    assert secure.kwargs["ssl_show_warn"] is False


def test_ca_certs_without_an_https_node_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        client_settings(es(host="h"), ElasticsearchConfig(ca_certs="/etc/ca.pem"))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "needs host or custom_config.hosts"),
        ({"host": "h", "password": PASSWORD}, "needs a username"),
        ({"host": "h", "username": "u", "custom_config": {"api_key": API_KEY}}, "one authentication method"),
        (
            {"host": "h", "custom_config": {"api_key": API_KEY, "bearer_token": TOKEN}},
            "one authentication method",
        ),
        ({"custom_config": {"hosts": ["es.local:9200"]}}, "http:// or https://"),
        ({"custom_config": {"hosts": ["http://es.local"]}}, "must include a port"),
        ({"custom_config": {"hosts": [f"http://u:{PASSWORD}@es.local:9200"]}}, "must not carry credentials"),
        ({"custom_config": {"hosts": ["http://es.local:9200/?x=1"]}}, "query string"),
        ({"custom_config": {"hosts": ["http://es.local:99999"]}}, "not a valid URL"),
        ({"custom_config": {"hosts": []}}, "hosts"),
        ({"ssl_enabled": True, "custom_config": {"hosts": ["http://es.local:9200"]}}, "ssl_enabled"),
        ({"host": "h", "custom_config": {"index": "Books"}}, "lowercase"),
        ({"host": "h", "custom_config": {"shards": 3}}, "custom_config.shards"),
    ],
)
def test_bad_configurations_are_refused_naming_the_field_without_secrets(
    body: dict[str, Any], fragment: str
) -> None:
    message = refused(**body)

    assert fragment in message
    assert PASSWORD not in message
    assert API_KEY not in message


async def test_an_unreadable_ca_file_is_a_configuration_error_at_open(tmp_path: Path) -> None:
    connector = ElasticsearchConnector(
        es(custom_config={"hosts": ["https://127.0.0.1:9200"], "ca_certs": str(tmp_path / "missing.pem")})
    )
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.open()
    finally:
        await connector.close()

    assert caught.value.category is ErrorCategory.CONFIGURATION


def test_every_declared_operation_has_a_row() -> None:
    assert set(ElasticsearchConnector.operation_table) == ElasticsearchConnector.operations
    assert ElasticsearchConnector.read_operations == {"get", "search", "aggregate", "count", "list_indices"}
    assert ElasticsearchConnector.operation_table["search"].traits.pages


async def prepare(connector: ElasticsearchConnector, request: OperationRequest) -> tuple[str, Any]:
    """Parse a request against its row and run its handler up to the first I/O (never reached)."""
    row = connector.operation_table[request.operation]
    call = row.parse(request, "elasticsearch")
    seen: list[Any] = []

    async def no_io(_: Any, work: Any) -> Any:
        seen.append(call)
        return None

    connector.run = no_io  # type: ignore[method-assign,assignment]
    await row.handler(connector, call)
    assert seen == [call]
    return request.operation, call


@pytest.mark.parametrize(
    ("operation", "data", "parameters", "fragment"),
    [
        ("insert", {"documents": []}, {"index": "b"}, "documents"),
        ("insert", {"documents": [{"a": 1}], "records": [{"a": 1}]}, {"index": "b"}, "same field"),
        ("insert", {"documents": [{"a": 1}], "ids": ["x", "y"]}, {"index": "b"}, "ids has 2 entries"),
        ("insert", {"documents": [{"a": 1}]}, {"index": "b", "batch_size": 0}, "batch_size"),
        ("insert", {"documents": [{"a": 1}]}, {"index": "b", "refresh": "later"}, "refresh"),
        ("insert", {"documents": [{"a": 1}]}, {"index": "b", "batchsize": 5}, "batchsize"),
        ("insert", {"documents": [{"a": 1}]}, {}, "parameters.index is required"),
        ("insert", {"documents": [{"a": 1}]}, {"index": "logs-*"}, "exactly one index"),
        ("search", {}, {"index": "b", "size": 10_001}, "page_size"),
        ("search", {}, {"index": "b", "page_size": 10_001}, "page_size"),
        ("search", {"query": {"match_all": {}}}, {"index": "b"}, "invalid data: query"),
        ("search", {}, {"index": "b", "paginate": True, "from": 10}, "from cannot be combined"),
        ("search", {}, {"index": "b", "keep_alive": "forever"}, "keep_alive"),
        ("aggregate", {}, {"index": "b"}, "aggs"),
        ("aggregate", {}, {"index": "b", "aggs": {"a": {}}, "aggregations": {"a": {}}}, "same field"),
        ("delete", {}, {"index": "b"}, "exactly one of id"),
        ("delete", {}, {"index": "b", "query": {"match_all": {}}, "refresh": "wait_for"}, "wait_for"),
        ("delete_index", {}, {}, "must be a string"),
        ("delete_index", {}, {"index": "b*"}, "exactly one index"),
        ("update", {"doc": {}}, {"index": "b", "id": "1"}, "doc"),
        ("get", {}, {"index": "b"}, "id"),
        ("list_indices", {}, {"pattern": "-b"}, "must not start"),
    ],
)
async def test_bad_requests_are_refused_before_any_io(
    operation: str, data: dict[str, Any], parameters: dict[str, Any], fragment: str
) -> None:
    connector = ElasticsearchConnector(es(host="127.0.0.1"))  # never opened: checks need no client

    with pytest.raises(PermanentError) as caught:
        await prepare(connector, OperationRequest(operation=operation, data=data, parameters=parameters))

    assert fragment in caught.value.message


async def test_from_cannot_be_combined_with_a_page_token() -> None:
    connector = ElasticsearchConnector(es(host="127.0.0.1"))
    request = OperationRequest(operation="search", parameters={"index": "b", "from": 5}, page_token="t")

    with pytest.raises(PermanentError) as caught:
        await prepare(connector, request)

    assert "page_token" in caught.value.message


def search_call(**parameters: Any) -> Any:
    request = OperationRequest(operation="search", parameters=parameters)
    return ElasticsearchConnector.operation_table["search"].parse(request, "elasticsearch").parameters


def test_search_parameters_use_the_clusters_names() -> None:
    params = search_call(index="b", **{"from": 5, "_source": ["title"]}, page_size=3)

    assert (params.from_, params.size, params.source) == (5, 3, ["title"])
    assert params.search_body() == {"_source": ["title"]}
    assert search_call(index="b").size == 10


def test_old_size_is_a_deprecated_alias_of_page_size() -> None:
    assert search_call(index="b", size=0).size == 0
    with pytest.raises(PermanentError, match="same field"):
        search_call(index="b", size=3, page_size=3)


def parsed(operation: str, data: dict[str, Any], parameters: dict[str, Any]) -> Any:
    request = OperationRequest(operation=operation, data=data, parameters=parameters)
    return ElasticsearchConnector.operation_table[operation].parse(request, "elasticsearch")


def test_records_is_moved_to_documents_and_aggregations_to_aggs() -> None:
    insert = parsed("insert", {"records": [{"a": 1}]}, {"index": "b"})
    aggs = parsed("aggregate", {}, {"aggregations": {"n": {"avg": {"field": "n"}}}})

    assert insert.data.documents == [{"a": 1}]
    assert aggs.parameters.aggs == {"n": {"avg": {"field": "n"}}}


def test_the_sink_batch_shape_is_the_canonical_insert() -> None:
    call = parsed("insert", {"documents": [{"a": 1}]}, {"index": "rows", "batch_size": 1})

    assert (call.data.documents, call.parameters.index) == ([{"a": 1}], "rows")


def test_delete_by_query_takes_a_boolean_refresh() -> None:
    params = DeleteParameters.model_validate({"query": {"term": {"a": 1}}, "refresh": True})

    assert params.id is None and params.refresh is True
