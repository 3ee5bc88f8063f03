"""The specification's example bodies, written once for every test that needs them."""

from __future__ import annotations

from typing import Any

# POST /connectors, as the spec prints it.
SPEC_CREATE_BODY: dict[str, Any] = {
    "service_type": "postgresql",
    "service_name": "analytics_db",
    "host": "localhost",
    "port": 5432,
    "database": "analytics",
    "username": "analyst",
    "password": "secure_password",
    "connection_pool_size": 5,
    "connection_timeout": 30,
    "retry_attempts": 3,
    "ssl_enabled": True,
    "custom_config": {"schema": "public", "auto_commit": True},
}

# POST /connectors/{service_name}/execute, as the spec prints it.
SPEC_INSERT_REQUEST: dict[str, Any] = {
    "connection_id": "analytics_db",
    "operation": "insert",
    "data_format": "json",
    "data": {
        "table_name": "user_analytics",
        "records": [{"user_id": 123, "action": "login", "timestamp": "2024-01-01T10:00:00Z"}],
    },
    "parameters": {"batch_size": 100, "on_conflict": "update"},
}

# Every key of the spec's performance-metrics dict.
SPEC_METRICS_KEYS = frozenset(
    {
        "service_name",
        "total_connections",
        "active_connections",
        "total_operations",
        "successful_operations",
        "failed_operations",
        "average_response_time",
        "uptime_percentage",
        "error_count",
    }
)
