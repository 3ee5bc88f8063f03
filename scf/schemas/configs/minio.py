"""`custom_config` of a `minio` connector (spec: MinIO Configuration) and the object-key rules it shares.

Credentials come from here or from the connection's username/password, the endpoint from here or from its
host/port. Every key the connector touches lives in `bucket_name` under `prefix`; `check_key` is the one
rule for what a safe key is, used by the config (prefix) and by the connector (every key of a request).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from scf.schemas.errors import ErrorCode, PermanentError

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

MIB = 1024 * 1024
#: S3's bounds on one part of a multipart upload.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB

# S3 bucket naming rules: 3-63 of lowercase letters, digits, dots and hyphens, alphanumeric at both ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_ENDPOINT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

#: S3's limit on the UTF-8 length of a whole object name (prefix included).
MAX_KEY_BYTES = 1024
_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# Characters that would let a key leave its folder or mean something else to a proxy that decodes it.
_UNSAFE_WHEN_ESCAPED = frozenset("./\\%")
# Invisible direction controls make a key display differently from what it is ("Trojan source").
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_PREVIEW_CHARS = 60


def key_problem(key: object, *, allow_empty: bool = False) -> str | None:
    """Why `key` is not a safe object key (relative to the connector's prefix), or None when it is.

    Refused: non-strings, empty keys, more than 1024 UTF-8 bytes, control and direction-control
    characters, backslashes, a leading '/', empty, '.' or '..' path segments (a trailing '/' naming a
    folder is fine), percent-escapes of '.', '/', '\\', '%' or control characters, and characters whose
    compatibility form (NFKC; e.g. the fullwidth full stop U+FF0E) would turn into any of those.
    Other Unicode is fine.
    """
    if not isinstance(key, str):
        return "must be a string"
    if not key:
        return None if allow_empty else "must not be empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if size > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        return "holds a control character"
    if any(ch in _BIDI_CONTROLS for ch in key):
        return "holds an invisible direction-control character"
    for match in _PERCENT_ESCAPE.finditer(key):
        decoded = chr(int(match.group(1), 16))
        if decoded in _UNSAFE_WHEN_ESCAPED or unicodedata.category(decoded) == "Cc":
            return (
                f"holds the percent-escape {match.group(0)!r} (of '.', '/', '\\', '%' or a control character)"
            )
    problem = _path_problem(key)
    if problem is None and unicodedata.normalize("NFKC", key) != key:
        folded = _path_problem(unicodedata.normalize("NFKC", key))
        problem = None if folded is None else f"holds characters that read as a path trick ({folded})"
    return problem


def _path_problem(key: str) -> str | None:
    if "\\" in key:
        return "holds a backslash"
    if key.startswith("/"):
        return "starts with '/'"
    segments = key.split("/")
    if segments[-1] == "":  # a trailing '/' names a folder (S3's folder marker), not an empty segment
        segments.pop()
    if "" in segments:
        return "holds an empty path segment ('//')"
    if "." in segments or ".." in segments:
        return "holds a '.' or '..' path segment"
    return None


def check_key(key: object, what: str = "key", *, allow_empty: bool = False) -> str:
    """Return `key` when it is safe (see `key_problem`); raise `permanent` INVALID_IDENTIFIER otherwise."""
    problem = key_problem(key, allow_empty=allow_empty)
    if problem is not None:
        raise PermanentError(f"{what} {_preview(key)} {problem}", code=ErrorCode.INVALID_IDENTIFIER)
    assert isinstance(key, str)
    return key


def check_prefix(prefix: str) -> str:
    """The configured folder: '' (the whole bucket) or a safe key, with a trailing '/' added if missing."""
    problem = key_problem(prefix, allow_empty=True)
    if problem is not None:
        raise ValueError(f"prefix {problem}")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _preview(key: object) -> str:
    if not isinstance(key, str):
        return f"of type {type(key).__name__}"
    return repr(key if len(key) <= _PREVIEW_CHARS else key[:_PREVIEW_CHARS] + "...")


def check_bucket_name(name: str) -> str:
    """Return `name` when it follows S3's bucket naming rules; raise ValueError naming the rule otherwise."""
    if not _BUCKET.match(name):
        raise ValueError(
            "bucket names are 3-63 lowercase letters, digits, '.' and '-', starting and ending with a "
            "letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name or _IP_ADDRESS.match(name):
        raise ValueError("bucket names cannot hold '..', '.-' or '-.', nor look like an IP address")
    return name


class MinioConfig(BaseModel):
    """`custom_config` of a `minio` connector: where the store is, whose keys, which bucket, what limits.

    Without `bucket_name` only list_buckets works (what discovery registers); every other operation
    is a configuration error. `max_object_bytes` caps bodies that travel inside messages (put_object,
    get_object); `max_ingest_bytes` caps objects `ingest` reads inside the worker. Bodies over
    `part_size` are uploaded in parts. The thread pool defaults to the connection's
    `connection_pool_size`; without `region` the SDK asks the store for the bucket's region once
    (which needs s3:GetBucketLocation).
    """

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(default=None, max_length=260, description="host:port, without a scheme")
    access_key: SecretStr | None = Field(default=None, min_length=1, max_length=256, repr=False)
    secret_key: SecretStr | None = Field(default=None, min_length=1, max_length=256, repr=False)
    session_token: SecretStr | None = Field(default=None, min_length=1, max_length=8192, repr=False)
    secure: bool | None = Field(default=None, description="HTTPS; defaults to the connection's ssl_enabled")
    cert_check: bool = True
    region: str | None = Field(default=None, description="skips the SDK's bucket-location lookup when set")
    bucket_name: str | None = Field(
        default=None, description="the connector's bucket; object operations need it"
    )
    prefix: str = Field(default="", max_length=512, description="a folder every key is confined to")
    max_object_bytes: int = Field(default=16 * MIB, ge=1, le=256 * MIB)
    max_ingest_bytes: int = Field(default=64 * MIB, ge=1, le=1024 * MIB)
    part_size: int = Field(default=16 * MIB, ge=MIN_PART_SIZE, le=MAX_PART_SIZE)
    thread_pool_size: int | None = Field(default=None, ge=1, le=200)
    read_timeout: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("endpoint")
    @classmethod
    def _plain_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _ENDPOINT.match(value)
        if not match:
            raise ValueError("endpoint is host or host:port without a scheme or path (set secure for HTTPS)")
        if match.group(2) and not 1 <= int(match.group(2)[1:]) <= 65535:
            raise ValueError("endpoint port must be 1-65535")
        return value

    @field_validator("region")
    @classmethod
    def _region_shape(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError("region is lowercase letters, digits and '-' (e.g. us-east-1)")
        return value

    @field_validator("bucket_name")
    @classmethod
    def _bucket_shape(cls, value: str | None) -> str | None:
        return None if value is None else check_bucket_name(value)

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        return check_prefix(value)

    @model_validator(mode="after")
    def _secret_with_access_key(self) -> MinioConfig:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("access_key and secret_key go together")
        if self.session_token is not None and self.access_key is None:
            raise ValueError("session_token needs access_key and secret_key")
        return self

    def check_connection(self, connection: ServiceConnection) -> None:
        if not (self.endpoint or connection.host):
            raise ValueError("minio needs custom_config.endpoint or host")
        if self.access_key is not None and (connection.username or connection.password):
            raise ValueError("give credentials either as username/password or in custom_config, not both")
