"""Settings of every fleet process, read from the environment (the spec's variables plus `SCF_*`).

Defaults work on a developer machine with RabbitMQ and Redis on loopback. With `SCF_SECRETS_DIR` set,
every setting may also come from a file of that folder named like its variable (`SCF_SECRET_KEY`, ...):
Kubernetes and Docker secrets mounted as files. A variable set in the environment wins over its file.
"""

from __future__ import annotations

import os
from functools import cached_property
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from scf.connectors.circuit import BreakerPolicy
from scf.fleet import broker_endpoints, redis_client
from scf.schemas.topology import QueueLimits

#: The largest request body any door takes (the dispatcher's own limit on an AMQP message).
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _split(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


class Settings(BaseSettings):
    # hide_input_in_errors: a refused URL or key must not be echoed, password and all, into a log
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", hide_input_in_errors=True
    )

    # the spec's variables
    service_connector_factory_port: int = Field(default=8306, ge=1, le=65535)
    service_host: str = "localhost"
    max_connections_per_service: int = Field(default=10, ge=1, le=500)
    connection_timeout: float = Field(default=30.0, gt=0)
    connection_retry_attempts: int = Field(default=3, ge=0, le=20)
    connection_retry_delay: float = Field(default=1.0, ge=0)
    health_check_interval: float = Field(default=30.0, gt=0)
    service_timeout_threshold: float = Field(default=60.0, gt=0)
    csv_ingestion_port: int = 8001
    api_ingestion_port: int = 8002
    pdf_ingestion_port: int = 8003
    postgres_output_port: int = 8004
    qdrant_vector_port: int = 6333
    elasticsearch_port: int = 9200
    minio_port: int = 9000
    rabbitmq_port: int = 5672

    # the fleet's own
    scf_amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    scf_redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    #: Redis Sentinel (docs/resilience.md): `host:port` entries separated by commas; empty: no Sentinel
    scf_redis_sentinels: str = ""
    scf_redis_sentinel_service: str = Field(default="scf", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    scf_redis_sentinel_password: SecretStr | None = None
    scf_secret_key: SecretStr | None = None
    scf_data_dir: Path = Path(".scf-data")
    #: a folder of secret files named like the variables (read when the process starts; see the docstring)
    scf_secrets_dir: Path | None = None
    scf_default_timeout: float = Field(default=30.0, gt=0, le=1500)
    scf_result_ttl: int = Field(default=3600, ge=1)
    scf_delivery_limit: int = Field(default=5, ge=1, le=100)
    scf_queue_max_length: int = Field(default=100_000, ge=1)
    scf_prefetch_dispatcher: int = Field(default=256, ge=1, le=10_000)
    scf_heartbeat_interval: float = Field(default=5.0, gt=0)
    scf_routing_cache_ttl: float = Field(default=1.0, ge=0, le=60)
    #: with no live worker for a request's type: "wait" (it waits in its type's queue until its deadline,
    #: so an autoscaler can start a worker from zero) or "fail" (NO_WORKER at once); a request may choose
    scf_no_worker: Literal["wait", "fail"] = "wait"
    scf_health_monitor: bool = True
    scf_discovery: bool = False
    scf_alert_webhook: str | None = None
    scf_queue_sample_interval: float = Field(default=5.0, gt=0)
    scf_shutdown_grace: float = Field(default=30.0, ge=0)
    #: how long a starting process waits for RabbitMQ and Redis (backoff with jitter) before it gives up
    scf_startup_timeout: float = Field(default=60.0, gt=0, le=3600)
    scf_metrics_port: int = Field(default=9464, ge=0, le=65535)
    scf_connectors_file: Path | None = None
    scf_log_level: str = "info"
    #: OpenTelemetry tracing (docs/observability.md): off, console (spans on stdout) or otlp.
    scf_tracing: Literal["off", "console", "otlp"] = "off"
    # resilience (issue: retries, breaker, dead letters, idempotency)
    scf_breaker_window: float = Field(default=10.0, gt=0, le=600)
    scf_breaker_min_failures: int = Field(default=5, ge=1, le=10_000)
    scf_breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    scf_breaker_cooldown: float = Field(default=5.0, gt=0, le=3600)
    scf_delayed_retries: int = Field(default=3, ge=0, le=20)
    scf_idempotency_ttl: int = Field(default=86_400, ge=60)
    scf_dead_letter_ttl: int = Field(default=7 * 86_400, ge=60)
    scf_dead_letter_max: int = Field(default=10_000, ge=10)
    #: AMQP users (comma-separated) whose `x-scf-caller` header the audit log believes (the gateway's).
    scf_trusted_forwarders: str = ""
    #: share of successful operations the worker writes an audit line for (failures: always; 0..1)
    scf_audit_sample: float = Field(default=1.0, ge=0, le=1)
    #: how often a worker flushes its metrics tally and breaker successes to Redis (seconds)
    scf_metrics_flush_interval: float = Field(default=1.0, gt=0, le=60)
    #: cancelled operation ids a worker remembers (from cancel events) to check Redis before running them
    scf_cancel_memory: int = Field(default=50_000, ge=100, le=10_000_000)
    #: test-only negative control of the fault suite: ack a request BEFORE its republish is confirmed.
    scf_unsafe_early_ack: bool = False
    # the gateway's edge (issue 11): body size, bodies in flight, slow bodies, forwarded headers
    scf_max_request_bytes: int = Field(default=MAX_REQUEST_BYTES, ge=1024, le=512 * 1024 * 1024)
    #: memory request bodies may take at once in a gateway: bytes read plus what they parse into
    scf_max_body_memory: int = Field(default=16 * MAX_REQUEST_BYTES, ge=1024)
    scf_body_read_timeout: float = Field(default=60.0, gt=0, le=3600)
    #: IPs/CIDRs whose X-Forwarded-For / X-Forwarded-Proto the gateway believes; empty: nobody's.
    scf_trusted_proxies: str = ""

    # access control (issue 14): principals, permissions, quotas, egress
    #: "off" turns access control off (local development only: every process logs a loud warning)
    scf_auth: Literal["on", "off"] = "on"
    #: YAML policy: roles and principals with their grants (docs/access-control.md)
    scf_policy_file: Path | None = None
    #: the gateway's bind address and optional TLS
    scf_gateway_host: str = "127.0.0.1"
    scf_tls_certfile: Path | None = None
    scf_tls_keyfile: Path | None = None
    #: OAuth2/OIDC bearer tokens: issuer, audience and JWKS URL (all three, or none: JWTs refused)
    scf_oidc_issuer: str | None = None
    scf_oidc_audience: str | None = None
    scf_oidc_jwks_url: str | None = None
    #: the token claim that carries grants (space-separated string or list), besides the policy's
    scf_oidc_grants_claim: str = "scope"
    #: per-principal request rate (requests/s; 0: no limit) and burst, unless the policy sets its own
    scf_rate_limit: float = Field(default=200.0, ge=0, le=1_000_000)
    scf_rate_burst: int = Field(default=400, ge=1, le=10_000_000)
    #: egress policy for every connector endpoint: comma-separated CIDRs, hosts (`*.` allowed) and
    #: `host:port` / `cidr:port` entries. Empty allow: anything not denied; deny adds to the defaults
    #: (link-local and cloud metadata addresses are always denied).
    scf_egress_allow: str = ""
    scf_egress_deny: str = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        folder = os.environ.get("SCF_SECRETS_DIR", "").strip()
        if folder:
            if not Path(folder).is_dir():  # a mount that did not happen must stop the process, not default
                raise ValueError(f"SCF_SECRETS_DIR={folder!r} is not a directory")
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=folder)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def auth_enabled(self) -> bool:
        return self.scf_auth != "off"

    @field_validator("scf_amqp_url")
    @classmethod
    def _broker_urls_are_usable(cls, value: SecretStr) -> SecretStr:
        broker_endpoints.endpoints(value.get_secret_value())  # its message never quotes a password
        return value

    @field_validator("scf_redis_sentinels")
    @classmethod
    def _sentinels_are_addresses(cls, value: str) -> str:
        redis_client.sentinel_addresses(value)
        return value

    @field_validator("scf_trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for entry in _split(value):
            ip_network(entry, strict=False)  # a typo must stop the gateway, not trust the wrong host
        return value

    @property
    def amqp_url(self) -> str:
        return self.scf_amqp_url.get_secret_value()

    @property
    def redis_url(self) -> str:
        return self.scf_redis_url.get_secret_value()

    @property
    def trusted_forwarders(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.scf_trusted_forwarders.split(",") if u.strip())

    @cached_property
    def queue_limits(self) -> QueueLimits:
        return QueueLimits(delivery_limit=self.scf_delivery_limit, max_length=self.scf_queue_max_length)

    @cached_property
    def breaker_policy(self) -> BreakerPolicy:
        return BreakerPolicy(
            window=self.scf_breaker_window,
            min_failures=self.scf_breaker_min_failures,
            failure_rate=self.scf_breaker_failure_rate,
            cooldown=self.scf_breaker_cooldown,
        )

    @property
    def trusted_proxies(self) -> list[str]:
        return _split(self.scf_trusted_proxies)

    @property
    def worker_ttl(self) -> float:
        """How long a worker's heartbeat counts as alive: three missed beats."""
        return self.scf_heartbeat_interval * 3
