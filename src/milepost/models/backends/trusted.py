"""The approver-set list of trusted types, in the metadata database.

Adding or removing a type needs the ``approver`` or ``admin`` role, checked inside the
write transaction that changes the list and appends its audit event, so a change is
recorded exactly when it happens and a revoked role takes effect at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from milepost.errors import AlreadyExists, NotFound, PermissionDenied
from milepost.models.models import TrustedType
from milepost.stores.audit import append_event
from milepost.stores.schema import roles, trusted_types

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.stores.metadata import MetadataStore

__all__ = ["TRUST_ROLES", "SqlTrustStore"]

#: Roles that may change the list.
TRUST_ROLES = ("approver", "admin")


def _record(row: sa.RowMapping) -> TrustedType:
    return TrustedType(row["type_name"], row["added_by"], int(row["added_at"]), row["reason"])


class SqlTrustStore:
    """Types every loader trusts in model files beyond the built-in allow-list."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def names(self) -> list[str]:
        """Every trusted type name."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(trusted_types.c.type_name)).scalars())

    def list(self) -> list[TrustedType]:
        """Every trusted type with who added it, when and why, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(trusted_types).order_by(trusted_types.c.type_name))
            return [_record(r) for r in rows.mappings()]

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
            conn.execute(sa.insert(trusted_types).values(**record.to_dict()))
            append_event(
                conn,
                actor=actor,
                action="trusted_type.add",
                object_type="trusted_type",
                object_id=type_name,
                after=record.to_dict(),
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
                before=record.to_dict(),
                reason=reason,
            )
        return record
