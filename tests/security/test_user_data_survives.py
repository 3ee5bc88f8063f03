"""A user's data on the machine's shared Redis and PostgreSQL survives the test suite's own set-up.

Plays the user the old suite hurt: keys in Redis databases that look free (the old claim deleted their
`scf:*` keys and flushed the database at release), and the spec example's `user_analytics` /
`user_events` tables in `test` and `analytics` (the old spec-example tests dropped them). Only what
this test planted is removed afterwards; a table that already existed is compared, never touched.
The benchmarks' Redis rule (bench/redis_target.py) is checked on a private server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import redis

from bench.redis_target import CLAIM_KEY, BenchRedis, RedisNotEmptyError
from tests.support.hygiene import ROOT
from tests.support.pg_schema import create_marked_table, drop_marked_table
from tests.support.private_services import LOOPBACK, PrivateRedis
from tests.support.services import PG_DSN, claim_redis_db

pytestmark = pytest.mark.integration

#: The shared databases the old claim took (15 down to 5); 13 was the benchmark's, planted as well.
SHARED_DBS = range(5, 16)
OLD_CLAIM_KEY = "scf-test:claimed-by"
ANALYTICS_DSN = PG_DSN.rsplit("/", 1)[0] + "/analytics"
USER_TABLES = {
    "user_analytics": "user_id int PRIMARY KEY, action text, timestamp timestamptz",
    "user_events": "id serial PRIMARY KEY, user_id int, date date, kind text",
}
USER_ROWS = {
    "user_analytics": "INSERT INTO user_analytics VALUES (123, 'the user''s own row', now())",
    "user_events": "INSERT INTO user_events (user_id, date, kind) VALUES (7, '2024-03-01', 'the user''s')",
}
SPEC_FLOW = [
    "tests/integration/test_gateway.py::test_execute_the_spec_insert_and_fetch_its_stored_result",
    "tests/integration/test_fleet_end_to_end.py::test_spec_insert_reply_has_spec_shape_and_row_is_stored",
    "tests/integration/test_fleet_end_to_end.py::test_spec_query_example_with_query_params",
]


def test_claiming_and_releasing_test_databases_leaves_a_users_keys_alone() -> None:
    marker = uuid.uuid4().hex
    planted: dict[int, dict[str, str]] = {}
    for index in SHARED_DBS:
        with redis.Redis(host="127.0.0.1", port=6379, db=index) as shared:
            if shared.exists(OLD_CLAIM_KEY):
                continue  # another session (of the old code) holds it: planting there proves nothing
            keys = {f"user-data:{marker}": "keep", f"scf:user:{marker}": "keep too"}
            shared.mset(keys)
            planted[index] = keys
    try:
        for _ in range(3):
            claimed = claim_redis_db()
            with redis.Redis.from_url(claimed.url) as own:
                own.set("scf:registry:test", "state the session wrote")
            claimed.release()
        lost = {}
        for index, keys in planted.items():
            with redis.Redis(host="127.0.0.1", port=6379, db=index) as shared:
                values = shared.mget(list(keys))
            if values != [v.encode() for v in keys.values()]:
                lost[index] = values
    finally:
        for index, keys in planted.items():
            with redis.Redis(host="127.0.0.1", port=6379, db=index) as shared:
                shared.delete(*keys)  # exactly the keys planted above, nothing else

    assert planted, "every shared database was claimed by another session: nothing was planted"
    assert not lost, f"the user's keys were deleted or changed in databases {sorted(lost)}"


@dataclass
class UserTable:
    dsn: str
    user: str
    name: str
    token: str | None  # set when this test created it (and will drop it); None: a real user's table
    before: tuple[int, str] | None = None


async def _snapshot(conn: asyncpg.Connection[asyncpg.Record], name: str) -> tuple[int, str] | None:
    if await conn.fetchval("SELECT to_regclass($1)", name) is None:
        return None
    row = await conn.fetchrow(
        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
    )
    assert row is not None
    return int(row[0]), str(row[1])


@pytest.fixture
async def user_tables() -> AsyncIterator[list[UserTable]]:
    """The spec's tables as a user who tried the spec has them (planted only where they are absent)."""
    admin = await asyncpg.connect(PG_DSN)
    try:  # the spec's role and database, made as the end-to-end test makes them (never dropped)
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'analyst'"):
            await admin.execute("CREATE ROLE analyst LOGIN")
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'analytics'"):
            await admin.execute("CREATE DATABASE analytics OWNER analyst")
    finally:
        await admin.close()
    places = [(PG_DSN, "postgres", ["user_analytics"]), (ANALYTICS_DSN, "analyst", list(USER_TABLES))]
    tables: list[UserTable] = []
    try:
        for dsn, user, names in places:
            conn = await asyncpg.connect(dsn, user=user)
            try:
                for name in names:
                    token = None
                    if await _snapshot(conn, name) is None:
                        token = await create_marked_table(conn, name, USER_TABLES[name])
                        await conn.execute(USER_ROWS[name])
                    tables.append(UserTable(dsn, user, name, token, await _snapshot(conn, name)))
            finally:
                await conn.close()
        yield tables
    finally:
        for table in tables:
            if table.token is not None:
                conn = await asyncpg.connect(table.dsn, user=table.user)
                try:
                    await drop_marked_table(conn, table.name, table.token)
                finally:
                    await conn.close()


async def test_the_spec_example_tests_leave_a_users_tables_alone(user_tables: list[UserTable]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(  # the suite's own spec-example tests, as a developer would run them
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SPEC_FLOW],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    after = {}
    for table in user_tables:
        conn = await asyncpg.connect(table.dsn, user=table.user)
        try:
            after[(table.dsn, table.name)] = await _snapshot(conn, table.name)
        finally:
            await conn.close()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout, run.stdout[-2000:]
    assert after == {(t.dsn, t.name): t.before for t in user_tables}, "a user's table was dropped or changed"


def test_a_benchmark_uses_only_an_empty_redis_database_and_flushes_only_its_own_claim() -> None:
    with PrivateRedis() as server:
        url = server.url.rsplit("/", 1)[0]
        with redis.Redis(host=LOOPBACK, port=server.port, db=1) as users:
            users.set("user-data", "keep")
            with pytest.raises(RedisNotEmptyError):
                BenchRedis.open(f"{url}/1")
            kept = users.get("user-data")

        bench = BenchRedis.open(f"{url}/2")
        with redis.Redis.from_url(bench.url) as state:
            state.set("scf:registry:bench", "the benchmark's")
            bench.close()
            flushed = state.dbsize()

        taken = BenchRedis.open(f"{url}/3")  # a user takes it over mid-run: our claim is gone
        with redis.Redis.from_url(taken.url) as state:
            state.delete(CLAIM_KEY)
            state.set("user-data", "keep")
            taken.close()
            left = state.get("user-data")

    assert (kept, flushed, left) == (b"keep", 0, b"keep")
