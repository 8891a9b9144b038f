"""The embedded online store: one SQLite file, one row per (view version, entity).

Reads go through the sqlite3 module directly (its statement cache prepares each statement
once); each thread has its own connection. One entity is one indexed point lookup; a
batch is one statement whatever its size: the keys go in as one JSON array, and
``json_each`` joined to the primary key returns the rows in the keys' order, with NULL
for a key without a row. That beats ``IN (?, ?, ...)`` here (84 us against 111 us for
100 keys): no parameter per key, no temporary index to sort the list into, no dict to
put the answer back in order. A key holding a NUL character (which SQLite's JSON
functions cut short) or a SQLite built without ``json_each`` takes the ``IN`` path.
WAL mode lets readers proceed while a materialization writes. The store's identity is
the one row of ``online_meta``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from milepost.errors import BackendUnavailable
from milepost.features.online import StoreIdentity, new_identity, unstorable_key

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SqliteOnlineStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    view TEXT NOT NULL,
    entity TEXT NOT NULL,
    event_ts INTEGER NOT NULL,
    created_ts INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (view, entity)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO online_features (view, entity, event_ts, created_ts, value) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (view, entity) DO UPDATE SET
    event_ts = excluded.event_ts, created_ts = excluded.created_ts, value = excluded.value
WHERE excluded.event_ts > online_features.event_ts
   OR (excluded.event_ts = online_features.event_ts
       AND excluded.created_ts >= online_features.created_ts)
"""
_META = """
CREATE TABLE IF NOT EXISTS online_meta (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    store_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revision INTEGER NOT NULL
)
"""
_IDENTITY = "SELECT store_id, created_at, revision FROM online_meta WHERE one = 1"
_READ_ONE = "SELECT value FROM online_features WHERE view = ? AND entity = ?"
_READ_MANY = (
    "SELECT f.value FROM json_each(?1) AS k LEFT JOIN online_features AS f"
    " ON f.view = ?2 AND f.entity = k.value ORDER BY k.key"
)
_dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


class SqliteOnlineStore:
    """Online features in a SQLite file (``sqlite:///path/online.db``)."""

    def __init__(self, uri: str, *, busy_timeout: float = 30.0) -> None:
        self.uri = uri
        path = (
            uri.removeprefix("sqlite:///")
            if uri.startswith("sqlite:///")
            else uri.removeprefix("sqlite:")
        )
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = busy_timeout
        self._local = threading.local()
        self._json_each = True  # False once SQLite says it has no json_each
        conn = self._conn()
        conn.execute(_SCHEMA)
        conn.execute(_META)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    cached_statements=256,
                )
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise BackendUnavailable(
                    f"Cannot open the online store {self.path}: {exc}."
                ) from exc
            self._local.conn = conn
        return conn

    def write(self, view_key: str, rows: Sequence[tuple[str, int, int, bytes]]) -> int:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_UPSERT, [(view_key, *r) for r in rows])
            conn.execute("COMMIT")
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, UnicodeEncodeError):
                raise unstorable_key(exc) from exc
            raise BackendUnavailable(f"The online store {self.path} failed: {exc}.") from exc
        return len(rows)

    def read(self, view_key: str, entities: Sequence[str]) -> list[bytes | None]:
        conn = self._conn()
        try:
            if len(entities) == 1:
                row = conn.execute(_READ_ONE, (view_key, entities[0])).fetchone()
                return [row[0] if row else None]
            if self._json_each:
                keys = _dumps(entities)
                if "\\u0000" not in keys:
                    try:
                        rows = conn.execute(_READ_MANY, (keys, view_key)).fetchall()
                    except sqlite3.OperationalError as exc:
                        if "json_each" not in str(exc):
                            raise
                        self._json_each = False
                    else:
                        return [r[0] for r in rows]
            return self._read_in(conn, view_key, entities)
        except UnicodeEncodeError as exc:
            raise unstorable_key(exc) from exc
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"The online store {self.path} failed: {exc}.") from exc

    @staticmethod
    def _read_in(
        conn: sqlite3.Connection, view_key: str, entities: Sequence[str]
    ) -> list[bytes | None]:
        """The batch read with ``IN (?, ...)``, 500 keys per statement."""
        found: dict[str, bytes] = {}
        for start in range(0, len(entities), 500):
            chunk = list(dict.fromkeys(entities[start : start + 500]))
            marks = ",".join("?" * len(chunk))
            sql = (
                f"SELECT entity, value FROM online_features WHERE view = ? AND entity IN ({marks})"  # noqa: S608 - only placeholders are interpolated
            )
            found.update(conn.execute(sql, (view_key, *chunk)).fetchall())
        return list(map(found.get, entities))

    def sample(self, view_key: str, n: int) -> list[str]:
        rows = (
            self._conn()
            .execute(
                "SELECT entity FROM online_features WHERE view = ? ORDER BY random() LIMIT ?",
                (view_key, n),
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def delete_view(self, view_key: str) -> None:
        self._conn().execute("DELETE FROM online_features WHERE view = ?", (view_key,))

    def identity(self) -> StoreIdentity | None:
        try:
            row = self._conn().execute(_IDENTITY).fetchone()
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"The online store {self.path} failed: {exc}.") from exc
        return None if row is None else StoreIdentity(row[0], int(row[1]), int(row[2]))

    def claim_identity(self, replacing: str | None = None) -> StoreIdentity:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(_IDENTITY).fetchone()
            if row is None or (replacing is not None and row[0] == replacing):
                fresh = new_identity()
                conn.execute(
                    "INSERT OR REPLACE INTO online_meta VALUES (1, ?, ?, ?)",
                    (fresh.store_id, fresh.created_at, fresh.revision),
                )
                row = (fresh.store_id, fresh.created_at, fresh.revision)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendUnavailable(f"The online store {self.path} failed: {exc}.") from exc
        return StoreIdentity(row[0], int(row[1]), int(row[2]))

    def bump_revision(self, store_id: str) -> int | None:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE online_meta SET revision = revision + 1 WHERE store_id = ?", (store_id,)
            )
            row = conn.execute(
                "SELECT revision FROM online_meta WHERE store_id = ?", (store_id,)
            ).fetchone()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendUnavailable(f"The online store {self.path} failed: {exc}.") from exc
        return None if row is None else int(row[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"
