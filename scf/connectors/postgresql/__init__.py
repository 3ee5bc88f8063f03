"""PostgreSQL connector (asyncpg): `query`, `insert`, `update` and `delete` on one configured schema.

`connector.py` holds the class; `identifiers.py`, `catalog.py`, `sql.py` and `coercion.py` are the pure
parts (name checks, SQL building, JSON <-> PostgreSQL values); `errors.py` is the error table.
"""

from scf.connectors.postgresql.connector import PostgreSQLOutputConnector

__all__ = ["PostgreSQLOutputConnector"]
