"""Dialect differences, in one place (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

__all__ = [
    "AUDIT_LOCK",
    "MIGRATION_LOCK",
    "ROLES_LOCK",
    "advisory_xact_lock",
    "bulk_insert",
    "insert_for",
]

# Keys of PostgreSQL advisory locks (any 64-bit numbers unique to Milepost).
MIGRATION_LOCK = 0x4D494C45_0001
AUDIT_LOCK = 0x4D494C45_0002
ROLES_LOCK = 0x4D494C45_0003  # role changes: one at a time, so the last admin stays


def advisory_xact_lock(conn: Connection, key: int) -> None:
    """Hold a PostgreSQL advisory lock until the transaction ends (no-op elsewhere).

    SQLite needs none: a write transaction there holds the database's write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ``on_conflict_do_*`` on the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def bulk_insert(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT many tuples through the driver's executemany, skipping per-row processing.

    Only for plain columns (text, numbers) whose Python values the driver takes as they are.
    """
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}.get(
        conn.dialect.paramstyle
    )
    if mark is None:  # pragma: no cover - both supported drivers have one of the above
        conn.execute(sa.insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    preparer = conn.dialect.identifier_preparer
    sql = (
        f"INSERT INTO {preparer.format_table(table)} "  # noqa: S608 - identifiers from our schema, quoted; values bound
        f"({', '.join(preparer.quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, list(rows))
