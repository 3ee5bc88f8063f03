"""Every connector type, built-in or from another package, registers through the same entry points.

A type is one record in a package's metadata (this project's own pyproject.toml for the built-in ones):

    [project.entry-points."scf.connectors"]
    echo = "my_package.echo:EchoConnector"          # a ServiceConnector subclass
    [project.entry-points."scf.connector_configs"]
    echo = "my_package.echo:EchoConfig"             # optional: its custom_config model

Every table of types (the connector registry, the config models, the known type names, the queues the
fleet declares) is derived from these records. Only names are read here (package metadata, no import),
so schemas stay free of drivers. A plugin cannot replace a built-in type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

CONNECTOR_GROUP = "scf.connectors"
CONFIG_GROUP = "scf.connector_configs"
#: Where the built-in connectors live: their registrations win over a plugin's of the same name.
BUILT_IN_PACKAGE = "scf."


@dataclass(frozen=True)
class Registration:
    service_type: str
    connector: str  # "module:attribute" of the ServiceConnector subclass
    config: str | None  # "module:attribute" of the custom_config model, if any

    @property
    def built_in(self) -> bool:
        return self.connector.startswith(BUILT_IN_PACKAGE)


def _targets(group: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for point in entry_points(group=group):
        if point.name in found and found[point.name].startswith(BUILT_IN_PACKAGE):
            continue  # a plugin cannot replace a built-in type
        found[point.name] = point.value
    return found


@cache
def registrations() -> dict[str, Registration]:
    """Type name -> its registration; the built-in types first, then plugins by name."""
    connectors, configs = _targets(CONNECTOR_GROUP), _targets(CONFIG_GROUP)
    records = [Registration(name, target, configs.get(name)) for name, target in connectors.items()]
    records.sort(key=lambda r: (not r.built_in, r.service_type if not r.built_in else ""))
    return {r.service_type: r for r in records}


def built_in_types() -> list[str]:
    return [name for name, r in registrations().items() if r.built_in]


def known_types() -> list[str]:
    """Every service type this installation can name: the built-in ones, then plugins."""
    return list(registrations())
