"""The database's own guards on the audit chain: triggers on both audit tables.

With these in place the database itself refuses to:

- change or delete an event (``audit_events`` is append-only; revision 0001);
- insert an event that does not follow the head (its ``seq`` must be the head's + 1 and
  its ``prev_hash`` the head's hash);
- leave the head behind: inserting an event moves ``audit_head`` to it, in the same
  statement, so no event can sit past the head and later writes never collide with one;
- move the head by hand, other than forward by one to a stored event with that hash;
- add, delete or truncate the head row (which would reset the chain to genesis).

One statement inserts one event: on PostgreSQL, a multi-row ``INSERT`` is refused from
its second row (row triggers that move the head run at the end of the statement).

Someone with database access can still drop or disable these triggers. ``verify`` checks
that each one exists, is enabled, and is defined exactly as here (a trigger replaced by a
no-op of the same name counts as removed). The definitions are the source of truth for
both the migrations that create them and that check: a migration that changes a guard
edits it here and replaces it in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["Guard", "install_statements", "problems", "uninstall_statements"]


@dataclass(frozen=True)
class Guard:
    """One trigger: its name, table and the statement that creates it."""

    name: str
    table: str
    create: str
    function: str | None = None  # PostgreSQL: the trigger function it runs


# -- SQLite --------------------------------------------------------------------------------

SQLITE: tuple[Guard, ...] = (
    # revision 0001
    Guard(
        "audit_events_no_update",
        "audit_events",
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ),
    Guard(
        "audit_events_no_delete",
        "audit_events",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ),
    # revision 0006
    Guard(
        "audit_events_follow_head",
        "audit_events",
        "CREATE TRIGGER audit_events_follow_head BEFORE INSERT ON audit_events "
        "WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_head WHERE id = 1) "
        "OR NEW.prev_hash IS NOT (SELECT hash FROM audit_head WHERE id = 1) "
        "BEGIN SELECT RAISE(ABORT, 'audit chain: an event must follow the head'); END",
    ),
    Guard(
        "audit_events_move_head",
        "audit_events",
        "CREATE TRIGGER audit_events_move_head AFTER INSERT ON audit_events "
        "BEGIN UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END",
    ),
    Guard(
        "audit_head_forward_only",
        "audit_head",
        "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
        "WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq + 1 "
        "OR NOT EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq AND hash = NEW.hash) "
        "BEGIN SELECT RAISE(ABORT, 'audit chain: the head only follows new events'); END",
    ),
    Guard(
        "audit_head_no_insert",
        "audit_head",
        "CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'audit chain: the head row is fixed'); END",
    ),
    Guard(
        "audit_head_no_delete",
        "audit_head",
        "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'audit chain: the head row is fixed'); END",
    ),
)

# -- PostgreSQL ----------------------------------------------------------------------------

POSTGRES_FUNCTIONS: dict[str, str] = {
    # revision 0001
    "milepost_audit_append_only": "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END",
    # revision 0006
    "milepost_audit_follow_head": (
        "DECLARE head_seq bigint; head_hash varchar; "
        "BEGIN "
        "SELECT seq, hash INTO head_seq, head_hash FROM audit_head WHERE id = 1 FOR UPDATE; "
        "IF head_seq IS NULL OR NEW.seq IS DISTINCT FROM head_seq + 1 "
        "OR NEW.prev_hash IS DISTINCT FROM head_hash THEN "
        "RAISE EXCEPTION 'audit chain: an event must follow the head'; "
        "END IF; "
        "RETURN NEW; "
        "END"
    ),
    "milepost_audit_move_head": (
        "BEGIN UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; RETURN NULL; END"
    ),
    "milepost_audit_head_forward_only": (
        "BEGIN "
        "IF NEW.id IS DISTINCT FROM OLD.id OR NEW.seq IS DISTINCT FROM OLD.seq + 1 "
        "OR NOT EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq AND hash = NEW.hash) "
        "THEN RAISE EXCEPTION 'audit chain: the head only follows new events'; "
        "END IF; "
        "RETURN NEW; "
        "END"
    ),
    "milepost_audit_head_fixed": "BEGIN RAISE EXCEPTION 'audit chain: the head row is fixed'; END",
}

POSTGRES: tuple[Guard, ...] = (
    # revision 0001
    Guard(
        "audit_events_append_only",
        "audit_events",
        # (as PostgreSQL prints it back: 0001 wrote "UPDATE OR DELETE", the same trigger)
        "CREATE TRIGGER audit_events_append_only BEFORE DELETE OR UPDATE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION milepost_audit_append_only()",
        "milepost_audit_append_only",
    ),
    Guard(
        "audit_events_no_truncate",
        "audit_events",
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION milepost_audit_append_only()",
        "milepost_audit_append_only",
    ),
    # revision 0006
    Guard(
        "audit_events_follow_head",
        "audit_events",
        "CREATE TRIGGER audit_events_follow_head BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION milepost_audit_follow_head()",
        "milepost_audit_follow_head",
    ),
    Guard(
        "audit_events_move_head",
        "audit_events",
        "CREATE TRIGGER audit_events_move_head AFTER INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION milepost_audit_move_head()",
        "milepost_audit_move_head",
    ),
    Guard(
        "audit_head_forward_only",
        "audit_head",
        "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION milepost_audit_head_forward_only()",
        "milepost_audit_head_forward_only",
    ),
    Guard(
        "audit_head_fixed",
        "audit_head",
        "CREATE TRIGGER audit_head_fixed BEFORE INSERT OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION milepost_audit_head_fixed()",
        "milepost_audit_head_fixed",
    ),
    Guard(
        "audit_head_no_truncate",
        "audit_head",
        "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION milepost_audit_head_fixed()",
        "milepost_audit_head_fixed",
    ),
)

#: The guards revision 0001 created; revision 0006 adds the others.
REVISION_0001 = frozenset(
    {
        "audit_events_no_update",
        "audit_events_no_delete",
        "audit_events_append_only",
        "audit_events_no_truncate",
        "milepost_audit_append_only",
    }
)


def _guards(dialect: str) -> tuple[Guard, ...]:
    return SQLITE if dialect == "sqlite" else POSTGRES


def _create_function(name: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ {POSTGRES_FUNCTIONS[name]} $$"
    )


def install_statements(dialect: str, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """The statements that create every guard (and PostgreSQL function) not in ``skip``.

    Triggers already present are dropped first, so running them twice is harmless.
    """
    statements: list[str] = []
    if dialect == "postgresql":
        statements += [_create_function(f) for f in POSTGRES_FUNCTIONS if f not in skip]
    for guard in _guards(dialect):
        if guard.name in skip:
            continue
        if dialect == "sqlite":
            statements.append(f"DROP TRIGGER IF EXISTS {guard.name}")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {guard.name} ON {guard.table}")
        statements.append(guard.create)
    return statements


def uninstall_statements(dialect: str, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """The statements that drop every guard (and PostgreSQL function) not in ``skip``."""
    statements: list[str] = []
    for guard in _guards(dialect):
        if guard.name in skip:
            continue
        if dialect == "sqlite":
            statements.append(f"DROP TRIGGER IF EXISTS {guard.name}")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {guard.name} ON {guard.table}")
    if dialect == "postgresql":
        statements += [
            f"DROP FUNCTION IF EXISTS {f}()" for f in POSTGRES_FUNCTIONS if f not in skip
        ]
    return statements


def _norm(sql: str | None) -> str:
    return " ".join((sql or "").split()).rstrip(";").strip()


def problems(conn: Connection) -> list[str]:
    """What is wrong with the guards on this database: one sentence each (empty: intact)."""
    if conn.dialect.name == "sqlite":
        return _sqlite_problems(conn)
    return _postgres_problems(conn)


def _missing(guard: Guard) -> str:
    return (
        f"the database guard {guard.name} on {guard.table} is missing: someone with database "
        "access dropped it, so the database no longer refuses changes to the audit trail."
    )


def _redefined(guard: Guard, what: str = "") -> str:
    return (
        f"the database guard {guard.name} on {guard.table} was redefined{what}: it no longer "
        "does what Milepost installed, so the database may accept changes to the audit trail."
    )


def _sqlite_problems(conn: Connection) -> list[str]:
    stored = {
        name: (table, sql)
        for name, table, sql in conn.execute(
            sa.text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
        )
    }
    found: list[str] = []
    for guard in SQLITE:
        if guard.name not in stored:
            found.append(_missing(guard))
            continue
        table, sql = stored[guard.name]
        if table != guard.table or _norm(sql) != _norm(guard.create):
            found.append(_redefined(guard))
    return found


_QUALIFIER = re.compile(r'(?:"[^"]+"|\w+)\.(?=\w)')


def _postgres_problems(conn: Connection) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT t.tgname, c.relname, t.tgenabled, pg_get_triggerdef(t.oid) AS definition, "
            "p.proname, p.prosrc "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal "
            "AND t.tgrelid IN (to_regclass('audit_events'), to_regclass('audit_head'))"
        )
    ).all()
    stored = {r.tgname: r for r in rows}
    found: list[str] = []
    for guard in POSTGRES:
        row = stored.get(guard.name)
        if row is None:
            found.append(_missing(guard))
            continue
        if row.relname != guard.table or _QUALIFIER.sub("", _norm(row.definition)) != _norm(
            guard.create
        ):
            found.append(_redefined(guard))
        elif row.proname != guard.function or _norm(row.prosrc) != _norm(
            POSTGRES_FUNCTIONS[row.proname]
        ):
            found.append(_redefined(guard, f" (its function {guard.function} was replaced)"))
        elif row.tgenabled == "D":
            found.append(
                f"the database guard {guard.name} on {guard.table} is disabled (ALTER TABLE "
                "... DISABLE TRIGGER): the database no longer refuses changes to the audit "
                "trail."
            )
    return found
