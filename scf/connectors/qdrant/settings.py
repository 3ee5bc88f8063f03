"""Pure translation of a `ServiceConnection` + `QdrantConfig` into `AsyncQdrantClient` arguments.

Remote: `custom_config.url`, else `host`/`port` (6333) with `ssl_enabled` -> https; the API key is
`custom_config.api_key`, else the password. Local mode: `custom_config.path` (relative paths sit under
`$SCF_DATA_DIR/qdrant/`; `":memory:"` keeps nothing), else `$SCF_DATA_DIR/qdrant/<service_name>`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scf.schemas.configs.qdrant import Metric, QdrantConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.secret_fields import mask_dsn

DEFAULT_PORT = 6333
IN_MEMORY = ":memory:"

#: `custom_config.metric` -> the name of Qdrant's `Distance` member.
DISTANCES: dict[Metric, str] = {
    "cosine": "COSINE",
    "dot": "DOT",
    "euclid": "EUCLID",
    "manhattan": "MANHATTAN",
}


@dataclass(frozen=True)
class ClientSettings:
    kwargs: dict[str, Any] = field(repr=False)  # may hold the API key: never logged
    where: str  # log-safe: "local:<path>", "local::memory:" or the server's address
    local: bool


def data_dir() -> Path:
    return Path(os.environ.get("SCF_DATA_DIR", ".scf-data"))


def local_path(connection: ServiceConnection, config: QdrantConfig, base: Path) -> str:
    """Where local mode keeps its files (or `":memory:"`)."""
    if config.path == IN_MEMORY:
        return IN_MEMORY
    root = base / "qdrant"
    if config.path is None:
        return str(root / connection.service_name)
    path = Path(config.path).expanduser()
    return str(path if path.is_absolute() else root / path)


def client_settings(connection: ServiceConnection, config: QdrantConfig, base: Path) -> ClientSettings:
    timeout = config.timeout or connection.connection_timeout
    if config.is_local(connection):
        path = local_path(connection, config, base)
        return ClientSettings(kwargs={"path": path}, where=f"local:{path}", local=True)
    api_key = config.api_key.get_secret_value() if config.api_key is not None else None
    kwargs: dict[str, Any] = {
        "api_key": api_key or connection.secret_password(),
        "prefer_grpc": config.prefer_grpc,
        "grpc_port": config.grpc_port,
        "timeout": max(1, math.ceil(timeout)),
        "check_compatibility": False,  # a blocking probe at construction; `open()` makes its own call
    }
    if config.url is not None:
        kwargs["url"] = config.url
        where = mask_dsn(config.url)  # shown in errors: a query string may carry a key
    else:
        https = config.https if config.https is not None else connection.ssl_enabled
        kwargs.update(host=connection.host, port=connection.port or DEFAULT_PORT, https=https)
        where = f"{'https' if https else 'http'}://{connection.host}:{kwargs['port']}"
    return ClientSettings(kwargs=kwargs, where=where, local=False)
