"""The built-in service types (plugins add more through entry points, see `scf.schemas.plugins`)."""

from __future__ import annotations

from enum import StrEnum


class ServiceType(StrEnum):
    POSTGRESQL = "postgresql"
    QDRANT = "qdrant"
    ELASTICSEARCH = "elasticsearch"
    MINIO = "minio"
    REDIS = "redis"
    RABBITMQ = "rabbitmq"
    API = "api"
    CSV = "csv"
    PDF = "pdf"


BUILT_IN_TYPES: tuple[str, ...] = tuple(t.value for t in ServiceType)
