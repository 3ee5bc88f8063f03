"""The test suite must never destroy what it did not create: a static guard over tests/, bench/, scripts/.

Unit speed, no network. The rule is documented in tests/support/hygiene.py; the corpus below holds the
shapes that once destroyed a user's data (flushed Redis databases, `DROP TABLE user_analytics`, a
scan that deleted `scf:*` keys) and must each be found, and the shapes the suite uses that must pass.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from tests.support.hygiene import check_python, check_shell, scan
from tests.support.pg_schema import drop_schema, schema_name

REFUSED: list[tuple[str, str, str]] = [  # (id, path, source)
    ("flushdb_call", "tests/x.py", "redis.Redis().flushdb()\n"),
    ("flushall_call", "bench/x.py", "client.flushall(asynchronous=True)\n"),
    ("flushdb_command", "tests/x.py", "client.execute_command('FLUSHDB')\n"),
    ("flush_in_lua", "tests/x.py", "client.eval(\"redis.call('flushdb')\", 0)\n"),
    ("scan_then_delete", "tests/x.py", "for key in client.scan_iter('scf:*'):\n    client.delete(key)\n"),
    ("keys_then_unlink", "tests/x.py", "for key in r.keys('*'):\n    r.unlink(key)\n"),
    ("drop_literal_table", "tests/x.py", "await conn.execute('DROP TABLE IF EXISTS user_analytics')\n"),
    (
        "drop_two_literals",
        "tests/x.py",
        "await db.execute('DROP TABLE IF EXISTS user_analytics, user_events')\n",
    ),
    ("truncate_literal", "bench/x.py", "await pool.execute('TRUNCATE user_analytics')\n"),
    ("truncate_table_kw", "tests/x.py", "await pool.execute('TRUNCATE TABLE public.orders CASCADE')\n"),
    ("delete_from_literal", "tests/x.py", "await conn.execute('DELETE FROM user_events WHERE id > 1')\n"),
    ("drop_schema_literal", "tests/x.py", "await conn.execute('DROP SCHEMA analytics CASCADE')\n"),
    ("drop_database", "tests/x.py", "await conn.execute('DROP DATABASE analytics')\n"),
    ("drop_role", "tests/x.py", "await conn.execute('drop role analyst')\n"),
    (
        "fixed_name_in_a_variable",
        "tests/x.py",
        "TABLE = 'csv_sink_target'\nawait pg.execute(f'DROP TABLE IF EXISTS {TABLE}')\n",
    ),
    (
        "fixed_f_string_name",
        "tests/x.py",
        "name = f'{prefix}_table'\nawait pg.execute(f'DROP TABLE {name}')\n",
    ),
    (
        "fixed_suffix",
        "tests/x.py",
        "_S = 'v1'\nname = f'scf_sec_{_S}'\nawait a.execute(f'DROP TABLE IF EXISTS {name}')\n",
    ),
    ("unknown_origin", "tests/x.py", "async def f(t):\n    await pg.execute(f'TRUNCATE {t}')\n"),
    ("mixed_targets", "tests/x.py", "t = unique('a')\nawait pg.execute(f'DROP TABLE {t}, user_analytics')\n"),
    ("fetch_delete", "tests/x.py", "await pg.fetch('DELETE FROM user_analytics RETURNING *')\n"),
    ("vhost_fixed", "bench/x.py", "vhost = 'production'\nrabbitmqctl('delete_vhost', vhost)\n"),
    ("vhost_inline", "bench/x.py", "rabbitmqctl('delete_vhost', '/')\n"),
    ("bucket_fixed", "tests/x.py", "s3.drop_bucket('backups')\n"),
    ("bucket_variable_fixed", "tests/x.py", "name = 'backups'\ns3.drop_bucket(name)\n"),
]

ALLOWED: list[tuple[str, str, str]] = [
    (
        "uuid_table",
        "tests/x.py",
        "t = f'scf_{uuid.uuid4().hex}'\nawait a.execute(f'DROP TABLE IF EXISTS {t}')\n",
    ),
    (
        "unique_helper",
        "tests/x.py",
        "t = unique('scf_pg')\nawait a.execute(f'DROP TABLE public.{t} CASCADE')\n",
    ),
    ("made_table", "tests/x.py", "t = await make_table('id int')\nawait a.execute(f'TRUNCATE {t}')\n"),
    (
        "unique_fixture",
        "tests/x.py",
        "@pytest.fixture\nasync def victim(make_table):\n    return await make_table('id int')\n"
        "async def test(victim):\n    await a.execute(f'DROP SEQUENCE {victim}_seq')\n",
    ),
    (
        "own_vhost",
        "bench/x.py",
        "self.vhost = f'b-{uuid.uuid4().hex}'\nrabbitmqctl('delete_vhost', self.vhost)\n",
    ),
    (
        "unique_suffix",
        "tests/x.py",
        "_S = uuid.uuid4().hex[:8]\nname = f'scf_sec_{_S}'\nawait a.execute(f'DROP TABLE {name}')\n",
    ),
    (
        "fixture_unpacked",
        "tests/x.py",
        "@pytest.fixture\ndef made():\n    yield unique('r'), unique('t')\n"
        "async def test(made):\n    role, table = made\n    await a.execute(f'DROP TABLE {table}')\n",
    ),
    ("own_bucket", "tests/x.py", "name = s3.new_bucket()\ns3.drop_bucket(name)\n"),
    ("hostile_corpus_text", "tests/x.py", "CASES = ['SELECT 1; DROP TABLE victim', 'TRUNCATE x']\n"),
    ("sent_to_connector", "tests/x.py", "await run(pg, 'query', parameters={'query': 'DROP TABLE t'})\n"),
    ("flush_in_private_helper", "tests/support/services.py", "client.flushdb()\n"),
    ("scan_read_only", "tests/x.py", "for key in store.scan_iter('scf:*'):\n    print(store.dump(key))\n"),
]


@pytest.mark.parametrize(("path", "source"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_each_destructive_shape_is_found(path: str, source: str) -> None:
    assert check_python(path, source), source


@pytest.mark.parametrize(("path", "source"), [c[1:] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_what_the_suite_may_do_passes(path: str, source: str) -> None:
    assert check_python(path, source) == []


@pytest.mark.parametrize(
    "line",
    [
        "redis-cli -n 13 FLUSHDB",
        "redis-cli flushall",
        'psql -c "DROP TABLE user_analytics"',
        "psql -c 'truncate x'",
    ],
)
def test_scripts_may_not_flush_or_drop(line: str) -> None:
    assert check_shell("scripts/x.sh", line + "\n")


def test_no_test_bench_or_script_file_destroys_what_it_did_not_create() -> None:
    findings, files = scan()

    assert files > 100, "the guard read too few files: is the layout it scans still tests/, bench/, scripts/?"
    assert not findings, "\n".join(str(f) for f in findings)


async def test_drop_schema_refuses_any_schema_a_test_did_not_mint() -> None:
    for name in ("public", "analytics", "scf_test_", "scf_test_XYZ", f"{schema_name()}; DROP SCHEMA public"):
        with pytest.raises(ValueError, match="refusing"):
            await drop_schema(cast(Any, None), name)  # refused before any connection is used
