"""One way to register a type: built-in connectors are entry points, exactly like plugins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scf.connectors import registry
from scf.connectors.base import ServiceConnector
from scf.connectors.registry import available_types, implementations
from scf.schemas.configs import config_model
from scf.schemas.connection_types import ServiceType
from scf.schemas.plugins import built_in_types, known_types, registrations

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared(group: str) -> dict[str, str]:
    points: dict[str, dict[str, str]] = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]
    return points[group]


def test_every_built_in_type_is_registered_in_pyproject_and_installed() -> None:
    connectors, configs = declared("scf.connectors"), declared("scf.connector_configs")
    assert set(connectors) == set(configs) == set(built_in_types())
    assert {name: r.connector for name, r in registrations().items() if r.built_in} == connectors
    assert {name: r.config for name, r in registrations().items() if r.built_in} == configs


def test_every_table_of_types_is_derived_from_the_registrations() -> None:
    assert known_types() == list(registrations())
    assert set(available_types()) == set(known_types())
    assert implementations() == {n: r.connector for n, r in registrations().items()}
    for service_type in built_in_types():
        model = config_model(service_type)
        assert (
            model is not None
            and f"{model.__module__}:{model.__name__}" == registrations()[service_type].config
        )


def test_the_type_name_constants_name_registered_types() -> None:
    assert {t.value for t in ServiceType} == set(built_in_types())


def test_a_type_that_cannot_be_imported_is_left_out_of_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.connector_class

    def broken_for_redis(service_type: str) -> type[ServiceConnector]:
        if service_type == "redis":
            raise AttributeError("module 'broken_plugin' has no attribute 'Connector'")
        return real(service_type)

    monkeypatch.setattr(registry, "connector_class", broken_for_redis)
    registry._catalog.cache_clear()
    catalog = registry.operation_catalog()
    registry._catalog.cache_clear()  # the next test sees the real catalog

    assert "redis" not in catalog and catalog["postgresql"]
