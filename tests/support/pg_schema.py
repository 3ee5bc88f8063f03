"""A PostgreSQL schema of the test's own, so tests never drop or truncate a table a user may own.

The spec's examples name tables a user plausibly has (`user_analytics` in `test` or `analytics`): tests
create them inside `scf_test_<hex>`, which they created, and point the connector's `schema` setting
(its `search_path`) at it. `DROP SCHEMA ... CASCADE` runs only on a name this module minted, and a
fixed-name table is dropped only if it carries the mark this module gave it at creation. This is the
named helper the hygiene guard (tests/support/hygiene.py) lets run such statements.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from scf.connectors.postgresql.identifiers import quote_ident

SCHEMA_PREFIX = "scf_test_"
#: The comment `create_marked_table` puts on a table, so `drop_marked_table` can prove it made it.
TABLE_MARK = "scf-test-created:"
_OWN_SCHEMA = re.compile(rf"^{SCHEMA_PREFIX}[0-9a-f]{{12}}$")


def schema_name() -> str:
    return f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}"


async def create_schema(conn: asyncpg.Connection[asyncpg.Record], owner: str | None = None) -> str:
    """Create a new, uniquely named schema (optionally owned by `owner`) and return its name."""
    name = schema_name()
    authorization = f" AUTHORIZATION {quote_ident(owner)}" if owner else ""
    await conn.execute(f"CREATE SCHEMA {quote_ident(name)}{authorization}")
    return name


async def drop_schema(conn: asyncpg.Connection[asyncpg.Record], name: str) -> None:
    """Drop a schema `create_schema` made, with what the test put in it; refuses any other name."""
    if not _OWN_SCHEMA.fullmatch(name):
        raise ValueError(f"refusing to drop schema {name!r}: not one a test created")
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")


@asynccontextmanager
async def own_schema(dsn: str, owner: str | None = None) -> AsyncIterator[str]:
    """A schema that exists for the `async with` block and is dropped (only it) afterwards."""
    conn = await asyncpg.connect(dsn)
    try:
        name = await create_schema(conn, owner)
        try:
            yield name
        finally:
            await drop_schema(conn, name)
    finally:
        await conn.close()


async def create_marked_table(conn: asyncpg.Connection[asyncpg.Record], name: str, columns: str) -> str:
    """Create table `name` (a fixed name a user might also use), marked with a fresh token; returns it.

    For tests that must play a user's table under its real name (the spec's `user_analytics`): the
    token in its comment is what lets `drop_marked_table` drop this table and never a user's.
    """
    token = uuid.uuid4().hex
    async with conn.transaction():
        await conn.execute(f"CREATE TABLE {quote_ident(name)} ({columns})")
        await conn.execute(f"COMMENT ON TABLE {quote_ident(name)} IS '{TABLE_MARK}{token}'")
    return token


async def drop_marked_table(conn: asyncpg.Connection[asyncpg.Record], name: str, token: str) -> bool:
    """Drop table `name` only if it still carries the mark `create_marked_table` gave it."""
    async with conn.transaction():
        if await conn.fetchval("SELECT to_regclass($1)", quote_ident(name)) is None:
            return False
        await conn.execute(f"LOCK TABLE {quote_ident(name)} IN ACCESS EXCLUSIVE MODE")  # no swap in between
        mark = await conn.fetchval("SELECT obj_description(to_regclass($1), 'pg_class')", quote_ident(name))
        if mark != f"{TABLE_MARK}{token}":
            return False
        await conn.execute(f"DROP TABLE {quote_ident(name)}")
    return True
