"""The declared-secret masking: DSN and header parsers, and `public_view` built from each type's model."""

from __future__ import annotations

from typing import Any

import pytest

from scf.schemas.connection import ServiceConnection, public_request_body
from scf.schemas.secret_fields import (
    MAX_DSN_CHARS,
    header_is_secret,
    mask_dsn,
    mask_headers,
    param_is_secret,
)
from scf.schemas.secrets import MASK

C = "c4n4ry-s3cr3t"


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (f"postgresql://u:{C}@h:5432/db", f"postgresql://u:{MASK}@h:5432/db"),
        (
            f"postgresql://u@h/db?password={C}&sslmode=require",
            f"postgresql://u@h/db?password={MASK}&sslmode=require",
        ),
        (f"postgresql://u@h/db?sslpassword={C}", f"postgresql://u@h/db?sslpassword={MASK}"),
        (f"postgresql://u@h/db?Pass%77ord={C}", f"postgresql://u@h/db?Pass%77ord={MASK}"),
        (f"postgresql://u@h/db?api_key={C}#token={C}", f"postgresql://u@h/db?api_key={MASK}#token={MASK}"),
        (f"postgresql://u:pa/ss?{C}@host/db", f"postgresql://u:{MASK}@host/db"),
        (f"postgresql://u:{C}@h1:5432,h2:5433/db", f"postgresql://u:{MASK}@h1:5432,h2:5433/db"),
        (f"redis://:{C}@h:6379/0", f"redis://:{MASK}@h:6379/0"),
        (f"amqp://guest:{C}@[::1]:5672/%2F", f"amqp://guest:{MASK}@[::1]:5672/%2F"),
        ("http://h/p?email=a@b&q=1", "http://h/p?email=a@b&q=1"),
        (f"host=h port=5432 password={C} dbname=x", f"host=h port=5432 password={MASK} dbname=x"),
        (f"host=h password = 'a b\\' {C}' user=u", f"host=h password={MASK} user=u"),
        (f"host=h passwd={C}", f"host=h passwd={MASK}"),
        (f"host=h sslpassword={C} sslmode=verify-full", f"host=h sslpassword={MASK} sslmode=verify-full"),
        (f"host=h password='{C}", MASK),  # unterminated quote: unreadable, masked whole
        (f"host=h {C}", MASK),
        ("a plain name", "a plain name"),
        (f"postgresql://u@h/db password={C}", MASK),
        (f"host=h password={C} options='-c x=a://b'", f"host=h password={MASK} options='-c x=a://b'"),
        (f"see postgresql://u:{C}@h/db for details", f"see postgresql://u:{MASK}@h/db for details"),
    ],
)
def test_mask_dsn_masks_every_secret_part(dsn: str, shown: str) -> None:
    assert mask_dsn(dsn) == shown
    assert C not in mask_dsn(dsn)


def test_mask_dsn_masks_oversized_text_whole() -> None:
    assert mask_dsn("host=h " + "x" * MAX_DSN_CHARS) == MASK


@pytest.mark.parametrize("name", ["X-Auth", "X-Vault-Key", "Signature", "Authorization", "Cookie", "X-Team"])
def test_headers_are_secret_unless_on_the_safe_list(name: str) -> None:
    assert header_is_secret(name)
    assert mask_headers({name: C, "Accept": "application/json"}) == {name: MASK, "Accept": "application/json"}


@pytest.mark.parametrize("name", ["Accept", "content-type", "User-Agent", "Accept-Language", "Cache-Control"])
def test_safe_headers_stay_visible(name: str) -> None:
    assert not header_is_secret(name)


def test_long_parameter_names_count_as_secret() -> None:
    assert param_is_secret("x" * 500) and param_is_secret("sslpassword") and not param_is_secret("sslmode")


def _view(body: dict[str, Any]) -> str:
    return str(ServiceConnection.parse({"service_name": "s", "test_on_create": False, **body}).public_view())


@pytest.mark.parametrize(
    "body",
    [
        {"service_type": "postgresql", "custom_config": {"connection_string": f"host=h password={C}"}},
        {
            "service_type": "postgresql",
            "custom_config": {"connection_string": f"postgresql://u@h/d?password={C}"},
        },
        {"service_type": "redis", "custom_config": {"url": f"redis://u:{C}@h:6379/0"}},
        {"service_type": "rabbitmq", "custom_config": {"url": f"amqp://u:{C}@h:5672/v"}},
        {"service_type": "minio", "custom_config": {"endpoint": "h:9000", "access_key": C, "secret_key": C}},
        {"service_type": "elasticsearch", "host": "h", "custom_config": {"api_key": C}},
        {"service_type": "qdrant", "custom_config": {"url": "http://h:6333", "api_key": C}},
        {"service_type": "qdrant", "custom_config": {"url": f"http://h:6333/?api_key={C}"}},
        {
            "service_type": "api",
            "custom_config": {"base_url": "https://a.example", "headers": {"X-Auth": C, "Signature": C}},
        },
        {
            "service_type": "api",
            "custom_config": {
                "base_url": "https://a.example",
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": f"https://a.example/t?client_assertion={C}&sig={C}",
                    "client_id": "id",
                    "client_secret": C,
                },
            },
        },
        {
            "service_type": "api",
            "custom_config": {"base_url": "https://a.example", "auth": {"type": "bearer", "token": C}},
        },
        {"service_type": "postgresql", "host": "h", "password": C},
    ],
)
def test_public_view_masks_what_each_model_declares(body: dict[str, Any]) -> None:
    assert C not in _view(body)


def test_public_view_keeps_the_shape_and_non_secret_parts() -> None:
    view = ServiceConnection.parse(
        {
            "service_type": "api",
            "service_name": "s",
            "custom_config": {
                "base_url": "https://a.example",
                "headers": {"Accept": "application/json", "X-Vault-Key": C},
                "max_pages": 3,
            },
        }
    ).public_view()
    assert view["custom_config"] == {
        "base_url": "https://a.example",
        "headers": {"Accept": "application/json", "X-Vault-Key": MASK},
        "max_pages": 3,
    }
    pg = ServiceConnection.parse(
        {
            "service_type": "postgresql",
            "service_name": "s",
            "custom_config": {
                "connection_string": f"postgresql://app:{C}@db:5432/x?sslmode=require",
                "schema": "a",
            },
        }
    ).public_view()
    assert pg["custom_config"] == {
        "connection_string": f"postgresql://app:{MASK}@db:5432/x?sslmode=require",
        "schema": "a",
    }


def test_api_headers_with_unusual_names_need_a_base_origin() -> None:
    with pytest.raises(Exception, match="credentials only go to that origin"):
        ServiceConnection.parse(
            {"service_type": "api", "service_name": "s", "custom_config": {"headers": {"X-Auth": C}}}
        )


@pytest.mark.parametrize(
    "body",
    [
        {
            "service_type": "postgresql",
            "service_name": "s",
            "custom_config": {"connection_string": f"host=h password={C}"},
        },
        # does not validate (unknown type, bad key): still masked, by DSN parsing of every custom string
        {"service_type": "nope", "service_name": "s", "custom_config": {"dsn": f"host=h sslpassword={C}"}},
        {"service_type": "api", "custom_config": {"headers": {"X-Auth": C}, "extra": f"https://h/?sig={C}"}},
        {
            "request": {
                "service_type": "redis",
                "service_name": "s",
                "custom_config": {"url": f"redis://:{C}@h:1/0"},
            }
        },
        {"operation": "query", "data": {"password": C}},
    ],
)
def test_a_request_body_shown_in_a_dead_letter_hides_config_secrets(body: dict[str, Any]) -> None:
    assert C not in str(public_request_body(body))


def test_the_api_connector_sends_unusual_headers_only_to_its_own_origin() -> None:
    from scf.connectors.api.settings import api_settings
    from scf.schemas.configs.api import ApiConfig

    custom = {"base_url": "https://a.example", "headers": {"Accept": "application/json", "X-Auth": C}}
    conn = ServiceConnection.parse({"service_type": "api", "service_name": "s", "custom_config": custom})
    settings = api_settings(conn, ApiConfig.model_validate(custom))
    assert settings.headers == {"Accept": "application/json"}
    assert settings.secret_headers == {"X-Auth": C}
    assert C not in repr(settings) + repr(ApiConfig.model_validate(custom))
