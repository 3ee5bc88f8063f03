"""THE MATRIX: every gateway route x every kind of credential -> 401 / 403 / the route's normal answer.

The gateway runs with access control on (API keys in a claimed Redis db, bearer JWTs checked against
a JWKS served on loopback) and a stub fleet; a route's normal answer is what it says with the stub
(no connectors: 404 for one named, 200 for lists), or what the admin API says over the real Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from scf.fleet import keys
from scf.gateway.auth import ROUTES, GuardedRoute, Rule
from scf.schemas.access import Permission
from tests.support.access_gateway import POLICY, Jwks, StubFleet, app_with, make_key, serving, settings_for
from tests.support.services import claim_redis_db

PG = {
    "service_name": "pg1",
    "service_type": "postgresql",
    "host": "127.0.0.1",
    "database": "test",
    "username": "postgres",
    "password": "matrix-pw",
}
DL = {"ids": ["dl_" + "0" * 32]}
#: (method, path as requested, body, status of the route's normal answer with the stub fleet)
REQUESTS: dict[tuple[str, str], tuple[str, Any, int]] = {
    ("POST", "/connectors"): ("/connectors", PG, 404),
    ("GET", "/connectors"): ("/connectors", None, 200),
    ("GET", "/connectors/{service_name}"): ("/connectors/pg1", None, 404),
    ("PUT", "/connectors/{service_name}"): ("/connectors/pg1", PG, 404),
    ("DELETE", "/connectors/{service_name}"): ("/connectors/pg1", None, 404),
    ("POST", "/connectors/{service_name}/execute"): ("/connectors/pg1/execute", {"operation": "query"}, 404),
    ("POST", "/connectors/{service_name}/test"): ("/connectors/pg1/test", None, 404),
    ("POST", "/connectors/{service_name}/pause"): ("/connectors/pg1/pause", None, 404),
    ("POST", "/connectors/{service_name}/resume"): ("/connectors/pg1/resume", None, 404),
    ("GET", "/connectors/{service_name}/status"): ("/connectors/pg1/status", None, 404),
    ("GET", "/connectors/{service_name}/metrics"): ("/connectors/pg1/metrics", None, 404),
    ("GET", "/operations/{operation_id}"): ("/operations/op_1", None, 404),
    ("POST", "/operations/{operation_id}/cancel"): ("/operations/op_1/cancel", None, 404),
    ("GET", "/connector-types"): ("/connector-types", None, 200),
    ("POST", "/connector-types/{service_type}/validate"): ("/connector-types/postgresql/validate", PG, 200),
    ("GET", "/metrics"): ("/metrics", None, 404),
    ("GET", "/metrics/prometheus"): ("/metrics/prometheus", None, 200),
    ("GET", "/dead-letters"): ("/dead-letters", None, 404),
    ("POST", "/dead-letters/replay"): ("/dead-letters/replay", DL, 404),
    ("POST", "/dead-letters/purge"): ("/dead-letters/purge", DL, 404),
    ("POST", "/keys"): ("/keys", {"name": "made-by-matrix", "grants": ["connectors:read"]}, 201),
    ("GET", "/keys"): ("/keys", None, 200),
    ("DELETE", "/keys/{key_id}"): ("/keys/00000000000000ff", None, 404),
    ("GET", "/access/principals"): ("/access/principals", None, 200),
    ("GET", "/access/principals/{name}"): ("/access/principals/nobody", None, 404),
    ("PUT", "/access/principals/{name}"): ("/access/principals/carol", {"grants": ["metrics:read"]}, 200),
    ("DELETE", "/access/principals/{name}"): ("/access/principals/nobody", None, 404),
    ("PUT", "/access/roles/{name}"): ("/access/roles/viewer", {"grants": ["connectors:read"]}, 200),
}
KINDS = (
    "no credentials",
    "bad key",
    "forged token",
    "expired token",
    "expired key",
    "missing permission (token)",
    "missing permission (key)",
    "right permission (token)",
    "right permission (key)",
)
EXPECTED_FAILURE = {"no credentials": 401, "bad key": 401, "forged token": 401, "expired token": 401}
PROTECTED = sorted(route for route, rule in ROUTES.items() if not rule.open)
MATRIX = [(route, kind) for route in PROTECTED for kind in KINDS]


def granted(rule: Rule) -> list[str]:
    """Exactly what the rule asks for (the first permission it accepts, on connector pg1 if per connector)."""
    if not rule.any_of:
        return []
    return [f"{rule.any_of[0]}:pg1" if rule.per_connector else rule.any_of[0]]


def withheld(rule: Rule) -> list[str]:
    """Every permission except the ones the rule accepts (and per-connector ones on another connector)."""
    others = [p.value for p in Permission if p.value not in rule.any_of]
    return others + ([f"{p}:other-*" for p in rule.any_of] if rule.per_connector else [])


@dataclass
class Gate:
    client: TestClient
    jwks: Jwks
    fleet: StubFleet
    keys: dict[tuple[str, Rule], str]
    expired_key: str
    redis_url: str


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    db = claim_redis_db()
    jwks = Jwks()
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(POLICY)
    fleet = StubFleet()
    made: dict[tuple[str, Rule], str] = {}
    for rule in set(ROUTES.values()):
        made["right", rule] = make_key(db.url, "matrix-right", granted(rule) or ["metrics:read"])
        made["missing", rule] = make_key(db.url, "matrix-missing", withheld(rule))
    expired = make_key(db.url, "matrix-expired", ["*"])
    _expire(db.url, expired)
    try:
        with serving(app_with(settings_for(db.url, jwks.url, Path(policy)), fleet)) as client:
            yield Gate(client, jwks, fleet, made, expired, db.url)
    finally:
        jwks.close()
        db.release()


def _expire(redis_url: str, key: str) -> None:
    """Backdate a key's expiry (the API sets one at least 60 s ahead)."""
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hset(keys.api_key(key.split("_")[1]), "expires_at", "1.0") == 0  # it existed
    finally:
        client.close()


def credentials(gate: Gate, rule: Rule, kind: str) -> dict[str, str]:
    jwks = gate.jwks
    token = {
        "no credentials": None,
        "bad key": "scf_0123456789abcdef_" + "A" * 43,
        "forged token": jwks.token("alice", "*", key=jwks.stranger),
        "expired token": jwks.token("alice", "*", lifetime=-3600),
        "expired key": gate.expired_key,
        "missing permission (token)": jwks.token("matrix-missing", withheld(rule)),
        "missing permission (key)": gate.keys["missing", rule],
        "right permission (token)": jwks.token("matrix-right", " ".join(granted(rule))),
        "right permission (key)": gate.keys["right", rule],
    }[kind]
    if token is None:
        return {}
    if kind.endswith("(key)") and "missing" in kind:
        return {"X-API-Key": token}  # both headers carry keys: one kind each way
    return {"Authorization": f"Bearer {token}"}


def expected(rule: Rule, kind: str, normal: int) -> int:
    if kind in EXPECTED_FAILURE or kind == "expired key":
        return 401
    if kind.startswith("missing permission"):
        return 403 if rule.any_of else normal  # a route for any caller has nothing to withhold
    return normal


def test_the_matrix_covers_every_protected_route_and_every_kind_of_credential() -> None:
    assert set(REQUESTS) == set(PROTECTED)
    print(f"access matrix: {len(PROTECTED)} routes x {len(KINDS)} kinds = {len(MATRIX)} requests")
    assert len(MATRIX) == len(PROTECTED) * len(KINDS) == 28 * 9


@pytest.mark.parametrize(("route", "kind"), MATRIX, ids=[f"{m} {p} | {k}" for (m, p), k in MATRIX])
def test_access_matrix(gate: Gate, route: tuple[str, str], kind: str) -> None:
    rule = ROUTES[route]
    path, body, normal = REQUESTS[route]
    headers = credentials(gate, rule, kind)
    before = len(gate.fleet.calls)

    response = gate.client.request(route[0], path, json=body, headers=headers)

    want = expected(rule, kind, normal)
    assert response.status_code == want, response.text
    if want == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if want in (401, 403):
        code = "UNAUTHENTICATED" if want == 401 else "FORBIDDEN"
        assert response.json()["error"]["code"] == code
        assert len(gate.fleet.calls) == before  # refused at the door: the fleet never heard of it
    else:  # whatever reached the fleet went as the caller
        name = "matrix-right" if kind.startswith("right") else "matrix-missing"
        assert all(who == name for _, who in gate.fleet.calls[before:])
    for value in headers.values():
        assert value.split()[-1] not in response.text  # no credential is ever echoed


def test_the_open_routes_need_no_credentials(gate: Gate) -> None:
    for path in ("/healthz", "/readyz", "/asyncapi.json", "/docs", "/openapi.json"):
        assert gate.client.get(path).status_code == 200, path


def test_every_route_of_the_app_has_a_decision_and_every_decision_a_route(gate: Gate) -> None:
    app: FastAPI = gate.client.app  # type: ignore[assignment]
    served = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods or ()}
    assert served == set(ROUTES)


def test_a_route_added_without_a_decision_cannot_be_built() -> None:
    app = FastAPI()
    app.router.route_class = GuardedRoute

    with pytest.raises(RuntimeError, match=r"no access decision for \['GET'\] /brand-new"):

        @app.get("/brand-new")
        async def brand_new() -> None:
            return None


def test_the_fleet_is_called_for_the_authenticated_principal(gate: Gate) -> None:
    token = gate.jwks.token("dave", "connectors:read")

    gate.client.get("/connectors/pg1", headers={"Authorization": f"Bearer {token}"})

    assert gate.fleet.calls[-1] == ("get_connector", "dave")
