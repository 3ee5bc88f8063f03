"""The deployment's egress policy for every connector endpoint (issue 14).

- `EgressPolicy.from_settings(settings)`; `await policy.check(endpoints)` -> `list[Pinned]` or
  `SecurityError(code=EGRESS_DENIED)`.
- `endpoints_of(service_type, config, connection)` / `connection_endpoints(connection)`.
- `install(policy)` makes it the process's policy: `ServiceConnector.open` re-checks against it, and
  the SSRF guard (scf/connectors/web/policy.py) applies it after a connector's own `allowed_hosts`.
- `widens(config)`, `masked(exc)`: what callers without `connectors:admin` may set and see.
"""

from __future__ import annotations

from scf.connectors.egress.endpoints import connection_endpoints, endpoints_of
from scf.connectors.egress.exposure import masked, widens
from scf.connectors.egress.policy import (
    DENIED_MESSAGE,
    EgressPolicy,
    Resolver,
    install,
    installed,
    system_resolver,
)
from scf.connectors.egress.rules import Endpoint, Pinned, parse_rule, parse_rules

__all__ = [
    "DENIED_MESSAGE",
    "EgressPolicy",
    "Endpoint",
    "Pinned",
    "Resolver",
    "connection_endpoints",
    "endpoints_of",
    "install",
    "installed",
    "masked",
    "parse_rule",
    "parse_rules",
    "system_resolver",
    "widens",
]
