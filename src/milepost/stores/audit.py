"""The audit chain: append inside the caller's transaction, read back in order.

Each event's ``hash`` is the SHA-256 of its canonical JSON content, which includes its
``seq`` and the previous event's hash. Appending locks the one-row ``audit_head`` table
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions are serial), so
concurrent writers produce one linear chain. Call :func:`append_event` last in a
transaction: it holds that lock until commit.

The database moves the head itself: a trigger refuses an event that does not follow the
head and moves the head to each inserted event (``stores/audit_guards.py``), so the
append is one read and one insert.

``verify`` replays the chain to check the current state (``governance/_replay.py``). A
change to a stage, an alias, an endpoint's routing, a role or a promotion request must
therefore append an event whose ``after`` holds the resulting state: see that module
for the fields each action carries.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost._records import record_dict
from milepost.stores.schema import audit_events, audit_head

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "StoredEvent",
    "append_event",
    "event_filters",
    "event_hash",
    "iter_events",
    "iter_rows",
    "query_events",
    "read_head",
    "stored_row",
]

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """One recorded change: who did what to which object, when, and why."""

    seq: int
    event_id: str
    time: int  # ms since the epoch, UTC
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    reason: str | None
    prev_hash: str
    hash: str

    def __repr__(self) -> str:
        return f"AuditEvent({_summary(self)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


@dataclass(frozen=True)
class StoredEvent:
    """One audit row exactly as stored: ``before``/``after`` are the canonical JSON text
    the hash covers (:meth:`event` decodes them)."""

    seq: int
    event_id: str
    time: int  # ms since the epoch, UTC
    actor: str
    action: str
    object_type: str
    object_id: str
    before: str | None
    after: str | None
    reason: str | None
    prev_hash: str
    hash: str

    def __repr__(self) -> str:
        return f"StoredEvent({_summary(self)})"

    def event(self) -> AuditEvent:
        """The event with ``before``/``after`` decoded."""
        return _to_event(vars(self))

    def exported(self) -> dict[str, Any]:
        """The row as ``audit export`` writes it (``before``/``after`` as JSON data)."""
        return {
            **vars(self),
            "before": None if self.before is None else json.loads(self.before),
            "after": None if self.after is None else json.loads(self.after),
        }

    def content_hash(self, *, seq: int | None = None) -> str:
        """The hash of this content (at ``seq`` instead of its own, when given)."""
        return event_hash(self, seq=seq)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``before``/``after`` as stored text)."""
        return record_dict(self)


def _summary(e: AuditEvent | StoredEvent) -> str:
    why = f": {e.reason}" if e.reason else ""
    line = f"{e.seq} {e.action} {e.object_type} {e.object_id} by {e.actor}{why}"
    return line if len(line) <= 72 else line[:71] + "…"


def _canonical(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def event_hash(row: Mapping[str, Any] | StoredEvent, *, seq: int | None = None) -> str:
    """The hash of a stored row (``before``/``after`` as stored JSON text).

    ``seq`` overrides the row's own, to test where a moved event came from.
    """
    if isinstance(row, StoredEvent):
        row = vars(row)
    content = {
        "seq": row["seq"] if seq is None else seq,
        "event_id": row["event_id"],
        "time": row["time"],
        "actor": row["actor"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "before": row["before"],
        "after": row["after"],
        "reason": row["reason"],
        "prev_hash": row["prev_hash"],
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# Built once: run creation appends an event, so statement construction is on a hot path.
_READ_HEAD = (
    sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
)
_INSERT_EVENT = sa.insert(audit_events)


def append_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's open write transaction.

    The database's trigger moves ``audit_head`` to the new event in the same statement.
    """
    head = conn.execute(_READ_HEAD).one()
    row: dict[str, Any] = {
        "seq": head.seq + 1,
        "event_id": uuid.uuid4().hex,
        "time": int(time.time() * 1000),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "before": _canonical(before),
        "after": _canonical(after),
        "reason": reason,
        "prev_hash": head.hash,
    }
    row["hash"] = event_hash(row)
    conn.execute(_INSERT_EVENT, row)
    return _to_event(row)


def _to_event(row: Mapping[str, Any] | sa.RowMapping) -> AuditEvent:
    return AuditEvent(
        seq=row["seq"],
        event_id=row["event_id"],
        time=row["time"],
        actor=row["actor"],
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        before=None if row["before"] is None else json.loads(row["before"]),
        after=None if row["after"] is None else json.loads(row["after"]),
        reason=row["reason"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def iter_rows(
    conn: Connection, *, batch: int = 5000, where: Sequence[ColumnElement[bool]] = ()
) -> Iterator[StoredEvent]:
    """Every stored row in ``seq`` order, as stored (JSON as text), in batches; ``where``
    narrows it (see :func:`event_filters`)."""
    last = -1
    while True:
        rows = (
            conn.execute(
                sa.select(audit_events)
                .where(audit_events.c.seq > last, *where)
                .order_by(audit_events.c.seq)
                .limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for r in rows:
            yield StoredEvent(**r)
        last = rows[-1]["seq"]


def iter_events(conn: Connection, *, batch: int = 5000) -> Iterator[AuditEvent]:
    """Every event in ``seq`` order."""
    for row in iter_rows(conn, batch=batch):
        yield row.event()


def event_filters(
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE clauses for the events matching every given argument (``action`` takes
    ``*`` as a wildcard; ``since_ms`` inclusive, ``until_ms`` exclusive)."""
    clauses: list[ColumnElement[bool]] = []
    if object_type:
        clauses.append(audit_events.c.object_type == object_type)
    if object_id:
        clauses.append(audit_events.c.object_id == object_id)
    if actor:
        clauses.append(audit_events.c.actor == actor)
    if action:
        clauses.append(audit_events.c.action.like(action.replace("*", "%")))
    if since_ms is not None:
        clauses.append(audit_events.c.time >= since_ms)
    if until_ms is not None:
        clauses.append(audit_events.c.time < until_ms)
    return clauses


def query_events(
    conn: Connection, *, limit: int = 100, before_seq: int | None = None, **filters: Any
) -> list[AuditEvent]:
    """The newest matching events first (``filters``: those of :func:`event_filters`;
    ``before_seq``: only events older than that one, the next page after it)."""
    clauses = event_filters(**filters)
    if before_seq is not None:
        clauses.append(audit_events.c.seq < before_seq)
    q = sa.select(audit_events).where(*clauses).order_by(audit_events.c.seq.desc()).limit(limit)
    return [StoredEvent(**r).event() for r in conn.execute(q).mappings()]


def stored_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as exported (``AuditEvent.to_dict()``: ``before``/``after`` as JSON data)
    back in its stored form, whose :func:`event_hash` is the event's hash."""
    return {
        **event,
        "before": _canonical(event.get("before")),
        "after": _canonical(event.get("after")),
    }


def read_head(conn: Connection) -> tuple[int, str]:
    """The head's ``(seq, hash)``."""
    row = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).one()
    return int(row.seq), str(row.hash)
