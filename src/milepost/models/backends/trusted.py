"""The approver-set list of trusted types, in the metadata database.

Adding or removing a type needs the ``approver`` or ``admin`` role, checked inside the
write transaction that changes the list and appends its audit event, so a change is
recorded exactly when it happens and a revoked role takes effect at once. Loaders honour
a row only when the newest audit event about its type is the ``trusted_type.add`` that
wrote exactly that row: a row written to the database directly trusts nothing.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost.errors import AlreadyExists, NotFound, PermissionDenied
from milepost.models.models import TrustedType
from milepost.stores.audit import append_event
from milepost.stores.schema import audit_events, roles, trusted_types

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["TRUST_ROLES", "SqlTrustStore"]

#: Roles that may change the list.
TRUST_ROLES = ("approver", "admin")


def _record(row: sa.RowMapping, audited: bool = True) -> TrustedType:
    return TrustedType(
        row["type_name"], row["added_by"], int(row["added_at"]), row["reason"], audited
    )


def _payload(record: TrustedType) -> dict[str, Any]:
    """The row's columns, as its audit event records them."""
    return {
        "type_name": record.type_name,
        "added_by": record.added_by,
        "added_at": record.added_at,
        "reason": record.reason,
    }


def _recorded(conn: Connection) -> dict[str, Any]:
    """For each type, the row its newest audit event says exists (None after a removal)."""
    state: dict[str, Any] = {}
    events = conn.execute(
        sa.select(audit_events.c.object_id, audit_events.c.action, audit_events.c.after)
        .where(audit_events.c.object_type == "trusted_type")
        .order_by(audit_events.c.seq)
    )
    for name, action, after in events:
        state[name] = json.loads(after) if action == "trusted_type.add" and after else None
    return state


class SqlTrustStore:
    """Types every loader trusts in model files beyond the built-in allow-list."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def names(self) -> list[str]:
        """The trusted type names loaders honour (rows backed by their audit event)."""
        return [r.type_name for r in self.list() if r.audited]

    def list(self) -> list[TrustedType]:
        """Every row with who added it, when and why, by name, and whether it is audited."""
        with self.db.read() as conn:
            rows = list(
                conn.execute(
                    sa.select(trusted_types).order_by(trusted_types.c.type_name)
                ).mappings()
            )
            if not rows:
                return []
            recorded = _recorded(conn)
        out = []
        for r in rows:
            record = _record(r)
            if recorded.get(record.type_name) != _payload(record):
                record = _record(r, audited=False)
            out.append(record)
        return out

    def _authorise(self, conn: Connection, actor: str, what: str) -> None:
        held = conn.execute(
            sa.select(roles.c.role).where(roles.c.actor == actor, roles.c.role.in_(TRUST_ROLES))
        ).first()
        if held is None:
            raise PermissionDenied(
                f"{actor!r} may not {what}: that needs the approver or admin role.",
                hint="Ask an admin to grant it (`milepost roles grant USER approver`) or to "
                "make the change.",
            )

    def add(self, type_name: str, reason: str, *, actor: str) -> TrustedType:
        """Trust a type for every loader (audited). Raises AlreadyExists, PermissionDenied."""
        with self.db.write() as conn:
            self._authorise(conn, actor, f"trust {type_name!r}")
            existing = (
                conn.execute(sa.select(trusted_types).where(trusted_types.c.type_name == type_name))
                .mappings()
                .first()
            )
            if existing is not None:
                raise AlreadyExists(
                    f"{type_name!r} is trusted already (added by {existing['added_by']}: "
                    f"{existing['reason']}).",
                    hint="Remove it first to record a new reason.",
                )
            record = TrustedType(type_name, actor, int(time.time() * 1000), reason)
            conn.execute(sa.insert(trusted_types).values(**_payload(record)))
            append_event(
                conn,
                actor=actor,
                action="trusted_type.add",
                object_type="trusted_type",
                object_id=type_name,
                after=_payload(record),
                reason=reason,
            )
        return record

    def remove(self, type_name: str, reason: str | None, *, actor: str) -> TrustedType:
        """Stop trusting a type (audited). Raises NotFound, PermissionDenied."""
        with self.db.write() as conn:
            self._authorise(conn, actor, f"stop trusting {type_name!r}")
            row = (
                conn.execute(sa.select(trusted_types).where(trusted_types.c.type_name == type_name))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(
                    f"{type_name!r} is not on the trusted list.",
                    hint="See the list with `milepost models trust list`.",
                )
            conn.execute(sa.delete(trusted_types).where(trusted_types.c.type_name == type_name))
            record = _record(row)
            append_event(
                conn,
                actor=actor,
                action="trusted_type.remove",
                object_type="trusted_type",
                object_id=type_name,
                before=_payload(record),
                reason=reason,
            )
        return record
