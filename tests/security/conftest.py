"""Hostile-input suite fixtures: the integration fleet (own vhost, own Redis db, real processes).

The security suite runs its own session fleet, so the attacks it sends never share a dispatcher, worker
or Redis database with the integration tests that run beside it.
"""

from tests.integration.conftest import (  # noqa: F401  (fixtures are found by name)
    client,
    env,
    fleet,
    gateway_url,
    logs,
    pg,
    real_services,
    redis_url,
    secret_key,
    vhost,
)
