"""Pure translation of a `ServiceConnection` + `QdrantConfig` into `AsyncQdrantClient` arguments.

Remote: `custom_config.url`, else `host`/`port` (6333) with `ssl_enabled` -> https; the API key is
`custom_config.api_key`, else the password. Local mode: always `$SCF_DATA_DIR/qdrant/<service_name>`
(`custom_config.path`, when given, is a sub-folder of it, or `":memory:"`, which keeps nothing); the
config model refuses any other path, and `local_store.confine` checks the resolved folder at open.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scf.schemas.configs.qdrant import IN_MEMORY, Metric, QdrantConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.secret_fields import mask_dsn

DEFAULT_PORT = 6333

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
    #: local mode on disk: `<data dir>/qdrant`, which no store may leave, and the connector's own folder
    #: in it, `<root>/<service_name>` (removed when the connector is deleted)
    root: Path | None = None
    folder: Path | None = None


def data_dir() -> Path:
    """The fleet's data directory, `$SCF_DATA_DIR` (what `Settings.scf_data_dir` reads), made absolute."""
    return Path(os.environ.get("SCF_DATA_DIR", ".scf-data")).absolute()


def local_path(connection: ServiceConnection, config: QdrantConfig, base: Path) -> str:
    """Where local mode keeps its files: the connector's own folder, a sub-folder of it, or `":memory:"`."""
    if config.path == IN_MEMORY:
        return IN_MEMORY
    folder = base / "qdrant" / connection.service_name
    return str(folder if config.path is None else folder.joinpath(*config.path.split("/")))


def client_settings(connection: ServiceConnection, config: QdrantConfig, base: Path) -> ClientSettings:
    timeout = config.timeout or connection.connection_timeout
    if config.is_local(connection):
        path = local_path(connection, config, base)
        if path == IN_MEMORY:
            return ClientSettings(kwargs={"path": path}, where=f"local:{path}", local=True)
        root = base / "qdrant"
        folder = root / connection.service_name
        return ClientSettings(
            kwargs={"path": path}, where=f"local:{path}", local=True, root=root, folder=folder
        )
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
