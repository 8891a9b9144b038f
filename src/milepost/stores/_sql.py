"""Dialect differences, in one place (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AUDIT_LOCK", "MIGRATION_LOCK", "advisory_xact_lock", "insert_for"]

# Keys of PostgreSQL advisory locks (any 64-bit numbers unique to Milepost).
MIGRATION_LOCK = 0x4D494C45_0001
AUDIT_LOCK = 0x4D494C45_0002


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
