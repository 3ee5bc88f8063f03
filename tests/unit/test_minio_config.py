"""MinIO connector configuration: the config model, where settings come from, secrets kept out of sight."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scf.connectors.minio import MinIOStorageConnector
from scf.connectors.minio.settings import client_settings
from scf.schemas.configs.minio import MIB, MinioConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError

SPEC_CONFIG = {
    "endpoint": "localhost:9000",
    "access_key": "minio_access_key",
    "secret_key": "minio_secret_key",
    "secure": False,
    "bucket_name": "data-lake",
}


def connection(custom_config: dict[str, Any], **fields: Any) -> ServiceConnection:
    body = {"service_type": "minio", "service_name": "lake", "custom_config": custom_config, **fields}
    return ServiceConnection.model_validate(body)


def test_the_spec_example_is_a_valid_configuration() -> None:
    config = MinioConfig.model_validate(SPEC_CONFIG)

    assert config.bucket_name == "data-lake"
    assert config.max_object_bytes == 16 * MIB
    settings = client_settings(connection(SPEC_CONFIG), config)
    assert (settings.endpoint, settings.secure, settings.access_key) == (
        "localhost:9000",
        False,
        "minio_access_key",
    )


def test_secrets_never_appear_in_reprs_or_the_public_view() -> None:
    conn = connection({**SPEC_CONFIG, "session_token": "tok-canary-1"})
    config = MinioConfig.model_validate(conn.custom_config)
    settings = client_settings(conn, config)

    shown = repr(config) + repr(settings) + repr(conn) + str(conn.public_view())

    for secret in ("minio_secret_key", "minio_access_key", "tok-canary-1"):
        assert secret not in shown


def test_endpoint_and_credentials_can_come_from_the_connection_fields() -> None:
    conn = connection(
        {"bucket_name": "data-lake"},
        host="minio.internal",
        port=9000,
        username="svc",
        password="pw",
        ssl_enabled=True,
        connection_pool_size=7,
        connection_timeout=3,
    )

    settings = client_settings(conn, MinioConfig.model_validate(conn.custom_config))

    assert settings.endpoint == "minio.internal:9000"
    assert (settings.access_key, settings.secret_key) == ("svc", "pw")
    assert settings.secure is True
    assert (settings.threads, settings.connect_timeout) == (7, 3)


def test_an_ipv6_host_is_bracketed() -> None:
    conn = connection({"bucket_name": "data-lake"}, host="::1", port=9000)

    assert client_settings(conn, MinioConfig.model_validate(conn.custom_config)).endpoint == "[::1]:9000"


def test_custom_config_overrides_ssl_enabled_and_sizes_the_thread_pool() -> None:
    conn = connection({**SPEC_CONFIG, "secure": True, "thread_pool_size": 3}, ssl_enabled=False)

    settings = client_settings(conn, MinioConfig.model_validate(conn.custom_config))

    assert (settings.secure, settings.threads) == (True, 3)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://localhost:9000"}, "endpoint"),
        ({"endpoint": "localhost:9000/path"}, "endpoint"),
        ({"endpoint": "localhost:70000"}, "endpoint"),
        ({"bucket_name": "Data_Lake"}, "bucket_name"),
        ({"bucket_name": "ab"}, "bucket_name"),
        ({"bucket_name": "192.168.1.1"}, "bucket_name"),
        ({"bucket_name": "a..b"}, "bucket_name"),
        ({"region": "US East"}, "region"),
        ({"part_size": 1024}, "part_size"),
        ({"max_object_bytes": 0}, "max_object_bytes"),
        ({"secret_key": None}, "access_key and secret_key go together"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_configurations_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**SPEC_CONFIG, **change}.items() if v is not None}

    with pytest.raises(ValidationError) as caught:
        MinioConfig.model_validate(body)

    assert field in str(caught.value)
    assert "minio_secret_key" not in str(caught.value)


def test_a_connector_needs_an_endpoint_and_one_source_of_credentials() -> None:
    with pytest.raises(ValidationError, match="endpoint or host"):
        connection({"bucket_name": "data-lake"})
    with pytest.raises(ValidationError, match="either as username/password or in custom_config"):
        connection(SPEC_CONFIG, username="svc", password="pw")


def test_the_bucket_is_optional_for_a_connector_that_only_lists_buckets() -> None:
    assert MinioConfig.model_validate({}).bucket_name is None


def test_a_session_token_needs_keys() -> None:
    with pytest.raises(ValidationError, match="session_token"):
        MinioConfig.model_validate({"bucket_name": "data-lake", "session_token": "t"})


def test_a_username_without_a_password_is_a_configuration_error() -> None:
    conn = connection({"bucket_name": "data-lake"}, host="h", username="svc")

    with pytest.raises(ConfigurationError):
        MinIOStorageConnector(conn)


def test_the_connector_serves_the_minio_type_only() -> None:
    csv = ServiceConnection.model_validate({"service_type": "csv", "service_name": "c"})

    with pytest.raises(ConfigurationError):
        MinIOStorageConnector(csv)
