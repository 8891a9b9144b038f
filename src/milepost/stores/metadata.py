"""The metadata store: one SQLAlchemy engine over SQLite (default) or PostgreSQL.

Writes go through :meth:`MetadataStore.write`, one transaction each. On SQLite a write
transaction starts with ``BEGIN IMMEDIATE`` so that writers queue on the database lock
(waiting up to the busy timeout) instead of failing with "database is locked" when a
read lock cannot be upgraded; reads use a deferred ``BEGIN`` and, with WAL, never wait
for writers. Migrations run automatically on first use, inside a write transaction on
SQLite and under a PostgreSQL advisory lock, so processes starting at once migrate once.

Nothing waits forever on PostgreSQL: connecting gives up after ``connect_timeout`` and
every statement (lock waits included) after ``statement_timeout``, each with an error
that names the setting. SQLite waits for a lock at most its busy timeout.
"""

from __future__ import annotations

import contextlib
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from milepost.errors import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    InvalidInput,
    MilepostError,
    mask_uri,
)
from milepost.stores import _sql

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection, Engine

__all__ = ["MetadataStore"]

_MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration's revision; a test checks it against Alembic's head. Update it
#: with every new file in ``migrations/versions``.
HEAD_REVISION = "0019"
_READONLY = "milepost_readonly"
_INT64_HINT = (
    f"Integers (ids, versions, steps, timestamps) must fit a signed 64-bit integer: "
    f"{-(2**63)} to {2**63 - 1}."
)


class MetadataStore:
    """Engine, transactions and schema migrations for the metadata database.

    Args:
        uri: an SQLAlchemy URI: ``sqlite:///path/to/milepost.db`` or
            ``postgresql+psycopg://user@host:5432/db``.
        busy_timeout: seconds a SQLite writer waits for the database lock.
        connect_timeout: seconds to wait for PostgreSQL to accept a connection (libpq
            counts whole seconds, at least 2).
        statement_timeout: seconds a PostgreSQL statement may run, lock waits included,
            before the server cancels it; 0 for no limit. Migrations are exempt.
        pool_timeout: seconds to wait for a free pooled connection when this process
            already uses them all.
        auto_migrate: bring the schema to the newest revision on first use.

    Raises:
        ConfigError: the URI's scheme is not supported or the database's schema is newer
            than this version of Milepost.
        BackendUnavailable: the database cannot be reached.
    """

    def __init__(
        self,
        uri: str,
        *,
        busy_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        statement_timeout: float = 60.0,
        pool_timeout: float = 30.0,
        auto_migrate: bool = True,
    ):
        self.uri = uri
        self.connect_timeout = max(2, math.ceil(connect_timeout))
        self.statement_timeout = statement_timeout
        self.pool_timeout = pool_timeout
        try:
            url = sa.engine.make_url(uri)
        except sa.exc.ArgumentError as exc:
            raise ConfigError(
                f"Metadata URI {mask_uri(uri)!r} is not a database URI.",
                hint="Use sqlite:///path/milepost.db or postgresql+psycopg://user@host/db.",
            ) from exc
        self.dialect = url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, busy_timeout, pool_timeout)
        elif self.dialect == "postgresql":
            self.engine = _postgres_engine(
                url, self.connect_timeout, statement_timeout, pool_timeout
            )
        else:
            raise ConfigError(
                f"Metadata URI scheme {url.drivername!r} is not supported.",
                hint="Supported: sqlite:///..., postgresql+psycopg://...",
            )
        event.listen(self.engine, "handle_error", _refused_value)
        self._migrated = False
        self._migrate_lock = threading.Lock()
        if auto_migrate:
            try:
                self.ensure_schema()
            except BaseException:
                self.engine.dispose()
                raise

    # -- transactions ---------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; commits on success, rolls back on any error."""
        with self._translate_errors(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a deferred transaction on SQLite)."""
        with self._translate_errors(), self.engine.connect() as conn:
            conn.execution_options(**{_READONLY: True})
            yield conn
            conn.rollback()

    @contextlib.contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.DBAPIError as exc:
            raise self._translate(exc) from exc
        except sa.exc.TimeoutError as exc:  # the connection pool, not the database
            raise BackendUnavailable(
                f"No connection to the metadata database {mask_uri(self.uri)} came free "
                f"within {self.pool_timeout:g} s: this process's threads hold every pooled "
                "connection.",
                hint="Use fewer concurrent threads or shorter transactions.",
            ) from exc

    def _translate(self, exc: sa.exc.DBAPIError) -> MilepostError:
        """Driver errors become Milepost errors at this boundary; callers never see them."""
        text = str(exc.orig).strip()
        where = mask_uri(self.uri)
        if "append-only" in text:
            return Conflict(
                "The audit trail is append-only: events cannot be changed or deleted.",
                hint="Record a new event instead.",
            )
        if "audit chain:" in text:
            return Conflict(
                "The audit trail refused the write: "
                + text[text.index("audit chain:") + 13 :].splitlines()[0].strip()
                + ".",
                hint="Milepost appends events one per statement, each with seq = head + 1 and "
                "prev_hash = the head's hash; the head moves with them and only so.",
            )
        if isinstance(exc, sa.exc.IntegrityError):
            return Conflict(
                f"The change clashes with a concurrent or existing one: {text}.",
                hint="Re-read the object and try again.",
            )
        if isinstance(exc, sa.exc.DataError):
            if getattr(exc.orig, "sqlstate", None) == "22003":  # numeric_value_out_of_range
                return InvalidInput(
                    f"A number is too large for the metadata database ({text}).",
                    hint=_INT64_HINT,
                )
            if "NUL (0x00)" in text:
                return InvalidInput(
                    "Text containing a NUL character (\\x00) cannot be stored in PostgreSQL.",
                    hint="Remove the NUL character from the name or value.",
                )
            return InvalidInput(
                f"The metadata database refused a value: {text}",
                hint="Check the value against the field's type and range.",
            )
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
            timeout = self._timeout_error(exc, text)
            if timeout is not None:
                return timeout
            if "locked" in text:
                return BackendUnavailable(
                    f"The SQLite database {where} stayed locked by another writer for "
                    "longer than the busy timeout.",
                    hint="Raise MILEPOST_SQLITE_BUSY_TIMEOUT or move to PostgreSQL for "
                    "many concurrent writers.",
                )
            return BackendUnavailable(
                f"The metadata database {where} failed: {text}",
                hint="Check that it is running and reachable, then retry.",
            )
        return BackendUnavailable(
            f"The metadata database {where} refused a statement: {text}",
            hint="This is likely a bug in Milepost or a schema changed by hand.",
        )

    def _timeout_error(self, exc: sa.exc.DBAPIError, text: str) -> MilepostError | None:
        """A connect or statement timeout, said in terms of the setting that bounds it."""
        orig = exc.orig
        if type(orig).__name__ == "ConnectionTimeout" or "timeout expired" in text:
            url = sa.engine.make_url(self.uri)
            return BackendUnavailable(
                f"Could not connect to the metadata database at "
                f"{url.host or 'the local socket'}:{url.port or 5432} "
                f"within {self.connect_timeout} s (db_connect_timeout): {text}.",
                hint="Check that PostgreSQL is running and reachable from here; raise "
                "MILEPOST_DB_CONNECT_TIMEOUT for a slow network.",
            )
        if getattr(orig, "sqlstate", None) == "57014" and "statement timeout" in text:
            return BackendUnavailable(
                f"A statement on the metadata database {mask_uri(self.uri)} did not finish "
                f"within {self.statement_timeout:g} s (db_statement_timeout) and was "
                "cancelled; it was most likely waiting for a lock another session holds.",
                hint="Look for a blocking session in pg_stat_activity, or raise "
                "MILEPOST_DB_STATEMENT_TIMEOUT (0 turns the limit off).",
            )
        return None

    # -- schema ---------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Migrate to the newest revision unless this process has done so already."""
        if self._migrated:
            return
        with self._migrate_lock:
            if not self._migrated:
                # Plain SQL first: importing Alembic costs a server or CLI ~0.2 s of start.
                if (
                    self._stored_revision() != HEAD_REVISION
                    and self.current_revision() != self.head_revision()
                ):
                    self.upgrade()
                self._migrated = True

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision`` (default: the newest)."""
        from alembic import command

        with self.write() as conn:
            if self.dialect == "postgresql":
                # a migration may rewrite a large table, or wait for another process's
                self._no_statement_timeout(conn)
                _sql.advisory_xact_lock(conn, _sql.MIGRATION_LOCK)
            current = _current_revision(conn)
            if current is not None and current not in self._known_revisions():
                raise ConfigError(
                    f"The metadata database is at schema revision {current!r}, which this "
                    "version of Milepost does not know: it was written by a newer Milepost.",
                    hint="Upgrade Milepost (pip install -U milepost).",
                )
            cfg = self._alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def _no_statement_timeout(self, conn: Connection) -> None:
        """Lift the statement timeout until this transaction ends (PostgreSQL)."""
        if self.dialect == "postgresql":
            conn.execute(sa.text("SET LOCAL statement_timeout = 0"))

    def _stored_revision(self) -> str | None:
        """``alembic_version``'s row read without Alembic (``None``: absent or several)."""
        with self.read() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        return str(rows[0][0]) if len(rows) == 1 else None

    def current_revision(self) -> str | None:
        """The schema revision stored in the database (``None`` when empty)."""
        with self.read() as conn:
            return _current_revision(conn)

    def head_revision(self) -> str:
        """The newest schema revision this version of Milepost ships."""
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def _known_revisions(self) -> set[str]:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        return {rev.revision for rev in script.walk_revisions()}

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        return cfg

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"MetadataStore({mask_uri(self.uri)!r})"


def _refused_value(ctx: sa.engine.ExceptionContext) -> MilepostError | None:
    """A value the driver cannot bind is the caller's mistake, said as InvalidInput.

    The drivers raise plain Python errors for these, which SQLAlchemy passes through
    unwrapped: ``OverflowError`` for an integer beyond a signed 64-bit one (sqlite3),
    ``UnicodeEncodeError`` for text with a lone surrogate (both drivers). PostgreSQL's
    refusals of a NUL character or an out-of-range number are ``DataError`` and are
    translated by :meth:`MetadataStore._translate`.
    """
    exc = ctx.original_exception
    if isinstance(exc, OverflowError):
        return InvalidInput(
            f"A number is too large for the metadata database ({exc}).", hint=_INT64_HINT
        )
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start : exc.end]
        return InvalidInput(
            f"Text containing {bad!r} cannot be stored: {exc.reason}.",
            hint="Text must be valid Unicode; a lone surrogate usually comes from "
            "decoding bytes with errors='surrogateescape'.",
        )
    return None


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _sqlite_engine(url: sa.URL, busy_timeout: float, pool_timeout: float) -> Engine:
    database = url.database or ""
    memory = database in ("", ":memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": busy_timeout, "check_same_thread": False},
    }
    if memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["pool_size"] = 8
        kwargs["max_overflow"] = 16
        kwargs["pool_timeout"] = pool_timeout
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (see the module docstring).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not memory:
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(
    url: sa.URL, connect_timeout: int, statement_timeout: float, pool_timeout: float
) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    query = dict(url.query)
    query.setdefault("connect_timeout", str(connect_timeout))
    # set at connection start-up (no extra round trip), after any options in the URI
    options = query.get("options", "")
    options = options if isinstance(options, str) else " ".join(options)
    ms = max(1, round(statement_timeout * 1000)) if statement_timeout > 0 else 0
    query["options"] = f"{options} -c statement_timeout={ms}".strip()
    url = url.set(query=query)
    try:
        return sa.create_engine(
            url, pool_size=8, max_overflow=16, pool_timeout=pool_timeout, pool_pre_ping=True
        )
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "PostgreSQL support needs psycopg.",
            hint="pip install 'milepost[postgres]'",
        ) from exc
