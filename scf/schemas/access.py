"""The access-control model (docs/access-control.md): permissions, grants, roles, principals, the policy.

A grant is `<permission>` or `<permission>:<connector glob>`; `*` alone grants everything. Connector
globs apply to the per-connector permissions (`execute:read`, `execute:write`); a grant without a glob
covers every connector. The same model is read from the policy file (`SCF_POLICY_FILE`, YAML), stored
by the admin API, carried by API keys and read from a bearer token's grants claim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import translate
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)


class Permission(StrEnum):
    CONNECTORS_READ = "connectors:read"
    CONNECTORS_WRITE = "connectors:write"
    #: widen the egress policy (`allowed_hosts`, `url_allowed_hosts`, `allow_private`, ...), and see
    #: connection errors in full (a closed port told from a silent one)
    CONNECTORS_ADMIN = "connectors:admin"
    EXECUTE_READ = "execute:read"
    EXECUTE_WRITE = "execute:write"
    DEAD_LETTERS_READ = "dead_letters:read"
    DEAD_LETTERS_WRITE = "dead_letters:write"
    KEYS_ADMIN = "keys:admin"
    METRICS_READ = "metrics:read"


#: Permissions granted per connector (a grant may name a glob of connector names).
PER_CONNECTOR = frozenset({Permission.EXECUTE_READ, Permission.EXECUTE_WRITE})
EVERYTHING = "*"
#: A glob of connector names: the characters of a service name plus `*` and `?`; short, few stars (so
#: matching stays cheap whatever the pattern).
GLOB_PATTERN = re.compile(r"[A-Za-z0-9_.*?\-]{1,128}")
MAX_GLOB_STARS = 8
MAX_GRANTS = 256
MAX_GRANT_CHARS = 160
PRINCIPAL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$"


@dataclass(frozen=True, slots=True)
class Grant:
    permission: str  # a Permission value, or "*"
    connectors: str = EVERYTHING  # a glob of connector names

    def __str__(self) -> str:
        if self.permission == EVERYTHING or self.connectors == EVERYTHING:
            return self.permission
        return f"{self.permission}:{self.connectors}"

    def covers(self, permission: str, connector: str | None) -> bool:
        if self.permission != EVERYTHING and self.permission != permission:
            return False
        if self.connectors == EVERYTHING or connector is None:
            return self.connectors == EVERYTHING
        return _glob(self.connectors)(connector) is not None


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> Callable[[str], Any]:
    """A compiled glob (fnmatch's translation: no backtracking blow-up, and the pattern is short)."""
    return re.compile(translate(pattern)).match


def parse_grant(text: str) -> Grant:
    """`*`, `<permission>` or `<permission>:<glob>` (a glob only on a per-connector permission)."""
    if not isinstance(text, str) or len(text) > MAX_GRANT_CHARS:
        raise ValueError("a grant is a string of at most 160 characters")
    if text == EVERYTHING:
        return Grant(EVERYTHING)
    family, _, rest = text.partition(":")
    action, _, glob = rest.partition(":")
    permission = f"{family}:{action}"
    if permission not in Permission._value2member_map_:
        raise ValueError(f"unknown permission {permission[:40]!r}")
    if not glob:
        if rest.endswith(":"):
            raise ValueError("an empty connector glob: give the permission alone for every connector")
        return Grant(permission)
    if permission not in PER_CONNECTOR:
        raise ValueError(f"{permission} is not granted per connector: give it without a glob")
    if not GLOB_PATTERN.fullmatch(glob) or glob.count("*") > MAX_GLOB_STARS:
        raise ValueError("a connector glob is 1-128 of A-Z a-z 0-9 _ . - * ? with at most 8 stars")
    return Grant(permission, glob)


def parse_grants(texts: list[str]) -> frozenset[Grant]:
    return frozenset(parse_grant(t) for t in texts)


def _checked(text: str) -> str:
    parse_grant(text)
    return text


def _grant_json_schema() -> dict[str, Any]:
    """Exactly what `parse_grant` admits, as JSON Schema (ECMA patterns, no look-around): `*`, a
    permission, or a per-connector permission with a glob of at most 128 characters and 8 stars."""
    chars = "[A-Za-z0-9_.?-]"
    glob = rf"(?:{chars}+(?:\*{chars}*){{0,{MAX_GLOB_STARS}}}|(?:\*{chars}*){{1,{MAX_GLOB_STARS}}})"
    whole = "|".join(sorted(p.value for p in Permission))
    per_connector = [
        {"pattern": f"^{p.value}:{glob}$", "maxLength": len(p.value) + 1 + 128} for p in sorted(PER_CONNECTOR)
    ]
    return {
        "type": "string",
        "maxLength": MAX_GRANT_CHARS,
        "anyOf": [{"pattern": rf"^(?:\*|{whole})$"}, *per_connector],
        "description": "`*`, a permission, or `execute:read|execute:write:<connector glob>`",
    }


#: A grant string in a model: checked by `parse_grant` when the model is validated.
GrantText = Annotated[str, AfterValidator(_checked), WithJsonSchema(_grant_json_schema())]


def _json_number(value: Any) -> Any:
    """A JSON number or null, as the schema says: `false` and `"5"` are not coerced (2.0 is an integer)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError("must be a number")
    return value


class PrincipalEntry(BaseModel):
    """One principal in the policy: roles (by name) and grants of its own, and optionally its own rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: list[str] = Field(default_factory=list, max_length=64)
    grants: list[GrantText] = Field(default_factory=list, max_length=MAX_GRANTS)
    #: requests per second (0: unlimited); unset: the deployment's SCF_RATE_LIMIT
    rate: Annotated[float | None, BeforeValidator(_json_number)] = Field(default=None, ge=0, le=1_000_000)
    burst: Annotated[int | None, BeforeValidator(_json_number)] = Field(default=None, ge=1, le=10_000_000)


class PolicyDocument(BaseModel):
    """The policy file: named roles (lists of grants) and principals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: dict[str, list[str]] = Field(default_factory=dict, max_length=1000)
    principals: dict[str, PrincipalEntry] = Field(default_factory=dict, max_length=100_000)

    @field_validator("roles")
    @classmethod
    def _role_grants_parse(cls, roles: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, grants in roles.items():
            if len(grants) > MAX_GRANTS:
                raise ValueError(f"role {name[:40]!r} has more than {MAX_GRANTS} grants")
            for text in grants:
                parse_grant(text)
        return roles

    @field_validator("principals")
    @classmethod
    def _names(cls, principals: dict[str, PrincipalEntry]) -> dict[str, PrincipalEntry]:
        for name in principals:
            if not re.fullmatch(PRINCIPAL_NAME_PATTERN, name):
                raise ValueError(f"principal name {name[:40]!r} does not match {PRINCIPAL_NAME_PATTERN}")
        return principals

    @model_validator(mode="after")
    def _roles_exist(self) -> PolicyDocument:
        for name, entry in self.principals.items():
            missing = [role for role in entry.roles if role not in self.roles]
            if missing:
                raise ValueError(f"principal {name!r} names unknown roles {missing[:5]}")
        return self

    def grants_of(self, entry: PrincipalEntry, roles: dict[str, list[str]] | None = None) -> frozenset[Grant]:
        """The entry's own grants plus its roles' (roles from this document unless given)."""
        known = self.roles if roles is None else roles
        texts = list(entry.grants)
        for role in entry.roles:
            texts.extend(known.get(role, ()))
        return parse_grants(texts)


@dataclass(frozen=True)
class Principal:
    """Who a request is from, and what it may do. `via`: amqp (the broker-verified user), key (an API
    key), jwt (a bearer token), forwarded (named by a trusted forwarder, e.g. the gateway)."""

    name: str
    grants: frozenset[Grant]
    via: str = "amqp"
    rate: float | None = None
    burst: int | None = None
    _seen: dict[tuple[str, str | None], bool] = field(default_factory=dict, compare=False, repr=False)

    def allows(self, permission: str, connector: str | None = None) -> bool:
        """May this principal use `permission` (on `connector`, for a per-connector permission)?
        Without a connector, a per-connector permission needs a grant that covers every connector."""
        key = (permission, connector)
        found = self._seen.get(key)
        if found is None:
            found = any(grant.covers(permission, connector) for grant in self.grants)
            if len(self._seen) < 1024:
                self._seen[key] = found
        return found

    @property
    def is_admin(self) -> bool:
        return any(grant.permission == EVERYTHING for grant in self.grants)

    def grant_texts(self) -> list[str]:
        return sorted(str(grant) for grant in self.grants)
