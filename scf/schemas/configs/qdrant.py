"""`custom_config` of a `qdrant` connector (spec: Qdrant Configuration), plus where it connects.

With no `host` on the connection and no `custom_config.url` the connector runs Qdrant's local mode
(embedded, no server) in the connector's own folder, `<SCF_DATA_DIR>/qdrant/<service_name>`, always:
`custom_config.path` may only name a sub-folder inside it (or `":memory:"`), never a place of its own.
Local mode has no authentication or TLS, so settings that only make sense for a server are refused there.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

#: Collection names the connector accepts: safe as a URL path segment and as a local directory name.
COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$"
MAX_VECTOR_DIMENSION = 65_536
#: `path` for a store that keeps nothing on disk.
IN_MEMORY = ":memory:"
#: `path` otherwise: a relative sub-folder of the connector's own folder, 1-8 segments of letters, digits,
#: `_` and `-` joined by `/`. No `.` at all (so no `..`), no leading `/`, backslash, `~`, NUL or drive.
LOCAL_SUBFOLDER_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(?:/[A-Za-z0-9_][A-Za-z0-9_-]{0,63}){0,7}"
PATH_DESCRIPTION = (
    "Local mode only. Local mode always stores under <SCF_DATA_DIR>/qdrant/<service_name>; `path` can only "
    'be ":memory:" (keep nothing on disk) or a relative sub-folder inside that folder (letters, digits, '
    "_ and -, up to 8 segments joined by /; no '.', '..', absolute path, ~ or backslash). Anything else "
    "is refused (INVALID_CONFIG). The folder is removed when the connector is deleted."
)

Metric = Literal["cosine", "dot", "euclid", "manhattan"]


class HnswSettings(BaseModel):
    """HNSW index parameters of a new collection (Qdrant's `hnsw_config`); unset ones keep the server's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    m: int | None = Field(default=None, ge=0, le=1_000)
    ef_construct: int | None = Field(default=None, ge=4, le=10_000)
    full_scan_threshold: int | None = Field(default=None, ge=0)
    on_disk: bool | None = None


class QdrantConfig(BaseModel):
    """`custom_config` of a `qdrant` connector.

    Where: `url` (or the connection's `host`/`port`, `ssl_enabled` -> https) for a server, else local mode
    in `<SCF_DATA_DIR>/qdrant/<service_name>` (`path`: a sub-folder of it, or `":memory:"` for a throwaway
    store). What new collections look like: `collection_name`
    (the default collection of every operation), `vector_dimension`, `metric`, `hnsw_config`,
    `replication_factor`, `shard_number`. Operation `parameters` override these per request.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    path: str | None = Field(default=None, min_length=1, max_length=600, description=PATH_DESCRIPTION)
    api_key: SecretStr | None = Field(default=None, repr=False)
    https: bool | None = None
    prefer_grpc: bool = False
    grpc_port: int = Field(default=6334, ge=1, le=65535)
    timeout: float | None = Field(default=None, gt=0, le=600)

    collection_name: str | None = Field(default=None, pattern=COLLECTION_NAME_PATTERN)
    vector_dimension: int | None = Field(default=None, ge=1, le=MAX_VECTOR_DIMENSION)
    index_type: Literal["HNSW", "hnsw"] = "HNSW"  # Qdrant's only dense index; accepted as the spec prints it
    metric: Metric = "cosine"
    hnsw_config: HnswSettings | None = None
    replication_factor: int | None = Field(default=None, ge=1, le=64)
    shard_number: int | None = Field(default=None, ge=1, le=1_024)

    @field_validator("url")
    @classmethod
    def _url_is_a_plain_http_address(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials; use custom_config.api_key")
        return url

    @field_validator("path")
    @classmethod
    def _path_is_a_subfolder_of_the_connectors_own(cls, path: str | None) -> str | None:
        # `max_length` is checked first, so the (linear, unambiguous) match sees at most 600 characters.
        if path is None or path == IN_MEMORY or re.fullmatch(LOCAL_SUBFOLDER_PATTERN, path):
            return path
        raise ValueError(
            'must be ":memory:" or a relative sub-folder name (letters, digits, _ and -, joined by /, no '
            "'.'); local mode always stores under <SCF_DATA_DIR>/qdrant/<service_name>"
        )

    def is_local(self, connection: ServiceConnection) -> bool:
        return self.url is None and connection.host is None

    def check_connection(self, connection: ServiceConnection) -> None:
        """Refuse combinations that say two things at once, or server settings in local mode."""
        if self.url is not None and (connection.host is not None or connection.port is not None):
            raise ValueError("give either host/port or custom_config.url, not both")
        if self.path is not None and not self.is_local(connection):
            raise ValueError("custom_config.path is for local mode; remove it or remove host/url")
        if self.https is False and connection.ssl_enabled:
            raise ValueError("ssl_enabled is true but custom_config.https is false")
        if self.url is not None and self.url.startswith("http://") and (self.https or connection.ssl_enabled):
            raise ValueError("custom_config.url is http:// but https / ssl_enabled is requested")
        if not self.is_local(connection):
            return
        server_only = {
            "custom_config.api_key / password": self.api_key is not None or connection.password is not None,
            "ssl_enabled / custom_config.https": bool(self.https or connection.ssl_enabled),
            "custom_config.prefer_grpc": self.prefer_grpc,
            "port": connection.port is not None,
        }
        given = [name for name, present in server_only.items() if present]
        if given:
            raise ValueError(
                f"{', '.join(given)} need a Qdrant server (host or custom_config.url); "
                "without one the connector runs Qdrant's local mode, which has no network, TLS or auth"
            )
