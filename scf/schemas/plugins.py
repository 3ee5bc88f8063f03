"""Connector types from other packages, declared through Python entry points (no fork needed).

A package adds a service type by declaring, in its own metadata:

    [project.entry-points."scf.connectors"]
    echo = "my_package.echo:EchoConnector"          # a ServiceConnector subclass
    [project.entry-points."scf.connector_configs"]
    echo = "my_package.echo:EchoConfig"             # optional: its custom_config model

Only names are read here (package metadata, no import), so schemas stay free of drivers.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from scf.schemas.connection_types import BUILT_IN_TYPES

CONNECTOR_GROUP = "scf.connectors"
CONFIG_GROUP = "scf.connector_configs"


@cache
def plugin_connectors() -> dict[str, str]:
    """Plugin type name -> "module:attribute"; a plugin cannot replace a built-in type."""
    return {ep.name: ep.value for ep in entry_points(group=CONNECTOR_GROUP) if ep.name not in BUILT_IN_TYPES}


@cache
def plugin_configs() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=CONFIG_GROUP) if ep.name not in BUILT_IN_TYPES}


def known_types() -> list[str]:
    """Every service type this installation can name: the built-in ones, then plugins."""
    return [*BUILT_IN_TYPES, *sorted(plugin_connectors())]
