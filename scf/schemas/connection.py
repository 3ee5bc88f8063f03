"""`ServiceConnection`: the spec's `POST /connectors` body, validated per service type.

The model keeps the password as a `SecretStr`; `public_view()` is the only shape that leaves the fleet
(list/get replies, the registry's public part, logs), masked by what each type's config model declares;
`sealed_payload()` is the only one that carries secrets (to be encrypted at rest).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from scf.schemas.connection_types import ServiceType as ServiceType  # re-exported: the built-in types
from scf.schemas.errors import ConfigurationError, ErrorCode
from scf.schemas.plugins import known_types
from scf.schemas.secret_fields import capped, mask_dsn, mask_headers, mask_text, public_config
from scf.schemas.secrets import MASK, redact

SERVICE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
MAX_FAILOVER_HOSTS = 8


class FailoverHost(BaseModel):
    """A backup endpoint of the same service: used while the primary's circuit breaker is open.

    `read_only` backups (replicas) serve only the connector's read operations.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    read_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        """Accept "host" or "host:port" as well as the object form."""
        if not isinstance(value, str):
            return value
        host, sep, port = value.rpartition(":")
        if sep and port.isdigit() and host and not host.endswith(":"):
            return {"host": host.strip("[]"), "port": int(port)}
        return {"host": value}

    def label(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


class ServiceConnection(BaseModel):
    """A connector's configuration, exactly the fields of the spec's create body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_type: str = Field(description="a built-in type (see ServiceType) or one a plugin adds")
    service_name: str = Field(pattern=SERVICE_NAME_PATTERN)
    host: str | None = Field(default=None, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = Field(default=None, max_length=128)
    username: str | None = Field(default=None, max_length=256)
    password: SecretStr | None = None
    connection_pool_size: int = Field(default=5, ge=1, le=200)
    connection_timeout: float = Field(default=30.0, gt=0, le=600)
    retry_attempts: int = Field(default=3, ge=0, le=20)
    ssl_enabled: bool = False
    failover_hosts: list[FailoverHost] = Field(default_factory=list, max_length=MAX_FAILOVER_HOSTS)
    custom_config: dict[str, Any] = Field(default_factory=dict, repr=False)
    test_on_create: bool = True
    #: at most this many operations on the connector at once, across the whole fleet (None: no limit
    #: beyond the pools): protects the data service behind it; more wait their turn within their deadline
    max_concurrent_operations: int | None = Field(default=None, ge=1, le=10_000)

    @field_validator("service_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in known_types():
            raise ValueError(f"unknown service type {value!r}; known: {', '.join(known_types())}")
        return value

    @model_validator(mode="after")
    def _check_type_config(self) -> Self:
        from scf.schemas.configs import validate_type_config

        validate_type_config(self)
        return self

    def endpoints(self) -> list[ServiceConnection]:
        """The primary followed by one connection per failover host (same credentials and settings)."""
        backups = [
            self.model_copy(update={"host": h.host, "port": h.port or self.port}) for h in self.failover_hosts
        ]
        return [self, *backups]

    def secret_password(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    def public_view(self) -> dict[str, Any]:
        """The configuration with every secret masked: what list/get replies, the registry and logs show.

        `custom_config` is masked by what its type's model declares (see `scf.schemas.secret_fields`),
        not by guessing from key names; `redact` remains the fallback for keys no model declares.
        """
        body = self.model_dump(mode="json", exclude={"password", "custom_config"})
        body = {k: mask_text(v) if isinstance(v, str) else v for k, v in body.items()}
        body["password"] = MASK if self.password is not None else None
        body["custom_config"] = self._public_custom_config()
        return body

    def _public_custom_config(self) -> dict[str, Any]:
        from scf.schemas.configs import parse_type_config

        try:
            parsed = parse_type_config(self.service_type, self.custom_config)
        except ValidationError:
            parsed = None  # validated at construction; a plugin model may still change under us
        if parsed is None:
            fallback = redact(capped(self.custom_config))
            assert isinstance(fallback, dict)
            return {k: mask_text(v) if isinstance(v, str) else v for k, v in fallback.items()}
        return public_config(parsed, self.custom_config)

    def sealed_payload(self) -> dict[str, Any]:
        """The full configuration, secrets included. Only ever handed to the encryption layer."""
        body = self.model_dump(mode="json", exclude={"password"})
        body["password"] = self.secret_password()
        return body

    @classmethod
    def parse(cls, body: Any) -> ServiceConnection:
        """Validate a create/update body; a bad one is a typed `configuration` error naming each field."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise ConfigurationError(
                "invalid connector configuration: " + describe_validation_error(exc),
                code=ErrorCode.INVALID_CONFIG,
            ) from None


def describe_validation_error(exc: ValidationError, limit: int = 10) -> str:
    """One line per field error, without echoing input values (which may be secrets)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def public_request_body(body: Any) -> Any:
    """A request body as a dead letter or log may show it: a connector config masked by its type's model.

    For bodies that carry a connector configuration (connector.create/update, alone or under `request`);
    any other body, and a config that does not validate, fall back to `redact` plus DSN masking of every
    string under `custom_config` (over-masking a broken config is fine; echoing its secret is not).
    """
    if not isinstance(body, dict):
        return redact(body)
    if isinstance(body.get("request"), dict):
        shown = redact({k: v for k, v in body.items() if k != "request"})
        return {**shown, "request": public_request_body(body["request"])}
    if "service_type" not in body and "custom_config" not in body:
        # An operation request: its header maps (api `parameters.headers`) are secrets unless safe, as
        # in a config; masking them by key name left `X-Auth` or `Signature` in clear.
        return _mask_header_maps(redact(body))
    try:
        return ServiceConnection.model_validate(body).public_view()
    except (ValidationError, ValueError, TypeError):
        shown = redact(body)
        assert isinstance(shown, dict)
        if "custom_config" in shown:
            shown["custom_config"] = _mask_unmodelled(shown["custom_config"])
        return shown


def _mask_header_maps(value: Any, depth: int = 0) -> Any:
    """`value` with every mapping held under a key named `headers` masked as headers are."""
    if depth > 8:
        return value  # already redacted: only header maps nested this deep stay masked by name
    if isinstance(value, dict):
        return {
            k: mask_headers(v)
            if str(k).lower() == "headers" and isinstance(v, dict)
            else _mask_header_maps(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_header_maps(v, depth + 1) for v in value]
    return value


def _mask_unmodelled(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return MASK
    if isinstance(value, str):
        return mask_dsn(value) if "=" in value or "://" in value else value
    if isinstance(value, dict):
        if any(str(k).lower() == "headers" for k in value):
            value = {
                k: mask_headers(v) if str(k).lower() == "headers" and isinstance(v, dict) else v
                for k, v in value.items()
            }
        return {k: _mask_unmodelled(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_unmodelled(v, depth + 1) for v in value]
    return value
