"""Names of the built-in service types, as constants for code and typing.

Which types exist is decided by their registrations (entry points, `scf.schemas.plugins`), not here: a
test checks that every constant names a registered built-in type.
"""

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
