"""Every Redis key the fleet writes (docs/architecture.md) in one place. Nothing else builds a key by hand."""

from __future__ import annotations

PREFIX = "scf:"
CONNECTORS_INDEX = f"{PREFIX}connectors"


def connector(name: str) -> str:
    return f"{PREFIX}connector:{name}"


def metrics(name: str) -> str:
    return f"{PREFIX}metrics:{name}"


def pool(name: str) -> str:
    """Hash of worker id -> JSON pool statistics of that worker's instance of the connector."""
    return f"{PREFIX}pool:{name}"


def latency(name: str, window: int) -> str:
    """Histogram (bucket index -> count) of one connector's response times in one 10-second window."""
    return f"{PREFIX}lat:{name}:{window}"


def lease(name: str) -> str:
    """A singleton role's lease (e.g. the health monitor): value = holder id, with a TTL."""
    return f"{PREFIX}lease:{name}"


def breaker(name: str) -> str:
    return f"{PREFIX}breaker:{name}"


def breaker_probe(endpoint: str) -> str:
    return f"{PREFIX}breaker:{endpoint}:probe"


def breaker_window(endpoint: str, bucket: int) -> str:
    return f"{PREFIX}breaker:{endpoint}:w:{bucket}"


def health(name: str) -> str:
    return f"{PREFIX}health:{name}"


def result(operation_id: str) -> str:
    return f"{PREFIX}result:{operation_id}"


def idempotency(name: str, key: str) -> str:
    return f"{PREFIX}idem:{name}:{key}"


def cached_result(name: str, digest: str) -> str:
    return f"{PREFIX}cache:{name}:{digest}"


DEAD_LETTERS_INDEX = f"{PREFIX}dead"


def dead_letter(letter_id: str) -> str:
    return f"{PREFIX}dead:{letter_id}"


def dead_letter_sealed(letter_id: str) -> str:
    return f"{PREFIX}dead:{letter_id}:sealed"


def operation_claim(operation_id: str) -> str:
    """Which request holds an operation id (a digest of its delivery identity), with the result's TTL."""
    return f"{PREFIX}opid:{operation_id}"


def cancelled(operation_id: str) -> str:
    return f"{PREFIX}cancel:{operation_id}"


def worker(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def workers_of_type(service_type: str) -> str:
    """Sorted set of worker ids serving a type, scored by the time their heartbeat expires."""
    return f"{PREFIX}workers:{service_type}"


ACCESS_PRINCIPALS = f"{PREFIX}access:principals"  # hash: principal name -> PrincipalEntry JSON
ACCESS_ROLES = f"{PREFIX}access:roles"  # hash: role name -> JSON list of grants
API_KEYS_INDEX = f"{PREFIX}apikeys"  # set of key ids


def api_key(key_id: str) -> str:
    """Hash of one API key: name, principal, sha256 of the secret, grants, created, expires, revoked."""
    return f"{PREFIX}apikey:{key_id}"


def operation_owner(operation_id: str) -> str:
    """The principal an operation id belongs to (its stored result, cancels), with the result's TTL."""
    return f"{PREFIX}owner:{operation_id}"


def quota_rate(principal_digest: str) -> str:
    """A principal's GCRA state (its theoretical arrival time, microseconds of Redis time)."""
    return f"{PREFIX}quota:rate:{principal_digest}"


def quota_slots(name: str) -> str:
    """Sorted set of one connector's running operations (lease token -> expiry)."""
    return f"{PREFIX}quota:slots:{name}"
