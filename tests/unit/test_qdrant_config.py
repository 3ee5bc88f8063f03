"""Qdrant `custom_config` and where the connector connects: local mode by default, a server when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scf.connectors.qdrant.settings import client_settings, local_path
from scf.schemas.configs.qdrant import QdrantConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError

DATA = Path("/srv/scf-data")
KEY = "qdrant-key-canary-52e1"


def connection(**fields: Any) -> ServiceConnection:
    return ServiceConnection.model_validate(
        {"service_type": "qdrant", "service_name": "vectors_db", **fields}
    )


def config_of(conn: ServiceConnection) -> QdrantConfig:
    return QdrantConfig.model_validate(conn.custom_config)


def test_the_spec_configuration_block_is_accepted_as_printed() -> None:
    spec = {
        "collection_name": "vectors",
        "vector_dimension": 384,
        "index_type": "HNSW",
        "metric": "cosine",
        "replication_factor": 1,
    }

    config = config_of(connection(custom_config=spec))

    assert (config.collection_name, config.vector_dimension, config.metric) == ("vectors", 384, "cosine")
    assert config.replication_factor == 1


@pytest.mark.parametrize(
    ("custom", "field"),
    [
        ({"colection_name": "x"}, "colection_name"),
        ({"metric": "hamming"}, "metric"),
        ({"vector_dimension": 0}, "vector_dimension"),
        ({"collection_name": "../etc"}, "collection_name"),
        ({"hnsw_config": {"m": 16, "ef": 1}}, "hnsw_config.ef"),
    ],
)
def test_bad_custom_config_is_refused_naming_the_field(custom: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServiceConnection.parse({"service_type": "qdrant", "service_name": "q", "custom_config": custom})

    assert f"custom_config.{field}" in caught.value.message


def test_without_host_or_url_it_is_local_mode_under_the_data_directory() -> None:
    conn = connection()

    settings = client_settings(conn, config_of(conn), DATA)

    assert settings.local
    assert settings.kwargs == {"path": str(DATA / "qdrant" / "vectors_db")}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("shared/vectors", str(DATA / "qdrant" / "vectors_db" / "shared" / "vectors")),
        (":memory:", ":memory:"),
    ],
)
def test_local_path_is_a_subfolder_of_the_connectors_own_or_in_memory(path: str, expected: str) -> None:
    conn = connection(custom_config={"path": path})

    assert local_path(conn, config_of(conn), DATA) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"password": KEY},
        {"custom_config": {"api_key": KEY}},
        {"ssl_enabled": True},
        {"port": 6333},
        {"custom_config": {"prefer_grpc": True}},
    ],
)
def test_server_settings_without_a_server_are_refused_not_silently_ignored(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServiceConnection.parse({"service_type": "qdrant", "service_name": "q", **fields})

    assert "local mode" in caught.value.message
    assert KEY not in caught.value.message


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"host": "qdrant", "custom_config": {"url": "http://qdrant:6333"}}, "not both"),
        ({"custom_config": {"url": "ftp://qdrant"}}, "http"),
        ({"custom_config": {"url": f"http://user:{KEY}@qdrant:6333"}}, "credentials"),
        ({"ssl_enabled": True, "custom_config": {"url": "http://qdrant:6333"}}, "https"),
        ({"host": "qdrant", "custom_config": {"path": "q"}}, "local mode"),
        ({"host": "qdrant", "ssl_enabled": True, "custom_config": {"https": False}}, "https is false"),
    ],
)
def test_contradictory_settings_are_refused(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServiceConnection.parse({"service_type": "qdrant", "service_name": "q", **fields})

    assert fragment in caught.value.message
    assert KEY not in caught.value.message


def test_a_server_by_host_takes_port_tls_and_the_password_as_api_key() -> None:
    conn = connection(host="qdrant.internal", ssl_enabled=True, password=KEY, connection_timeout=2.5)

    settings = client_settings(conn, config_of(conn), DATA)

    assert not settings.local
    assert settings.kwargs["host"] == "qdrant.internal"
    assert settings.kwargs["port"] == 6333
    assert settings.kwargs["https"] is True
    assert settings.kwargs["api_key"] == KEY
    assert settings.kwargs["timeout"] == 3
    assert settings.where == "https://qdrant.internal:6333"


def test_custom_api_key_wins_and_never_shows_in_repr_or_public_view() -> None:
    conn = connection(
        custom_config={"url": "https://cloud.example:6333", "api_key": KEY, "prefer_grpc": True},
        password="other-secret",
    )

    settings = client_settings(conn, config_of(conn), DATA)

    assert settings.kwargs["api_key"] == KEY
    assert settings.kwargs["url"] == "https://cloud.example:6333"
    assert settings.kwargs["prefer_grpc"] is True
    assert KEY not in repr(settings)
    assert KEY not in repr(config_of(conn))
    assert KEY not in str(conn.public_view())
