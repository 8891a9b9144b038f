"""Roles: who may approve promotions (``approver``) and manage roles (``admin``).

Granting and revoking need the ``admin`` role, except while nobody holds it: the first
grants bootstrap the system (and are audited as such). In embedded mode anyone with
write access to the database could change these rows directly; the audit trail still
records every change made through Milepost, and the server (later) ties actors to tokens.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from milepost.errors import InvalidInput, NotFound, PermissionDenied
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import roles

if TYPE_CHECKING:
    from milepost.stores.metadata import MetadataStore

__all__ = ["KNOWN_ROLES", "RoleService"]

KNOWN_ROLES = ("admin", "approver")
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class RoleService:
    """Grant, revoke and check roles."""

    def __init__(self, db: MetadataStore, actor: str) -> None:
        self.db = db
        self.actor = actor

    def has(self, actor: str, role: str) -> bool:
        """Whether ``actor`` holds ``role``."""
        with self.db.read() as conn:
            return (
                conn.execute(
                    sa.select(roles.c.actor).where(roles.c.actor == actor, roles.c.role == role)
                ).first()
                is not None
            )

    def holders(self, role: str) -> list[str]:
        """Everyone holding ``role``."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(roles.c.actor).where(roles.c.role == role).order_by(roles.c.actor)
                ).scalars()
            )

    def list(self) -> list[tuple[str, str, str, int]]:
        """``(actor, role, granted_by, granted_at)`` for every grant."""
        with self.db.read() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.select(
                        roles.c.actor, roles.c.role, roles.c.granted_by, roles.c.granted_at
                    ).order_by(roles.c.role, roles.c.actor)
                )
            ]

    def _authorise(self, conn: sa.Connection) -> str | None:
        admins = (
            conn.execute(sa.select(roles.c.actor).where(roles.c.role == "admin")).scalars().all()
        )
        if not admins:
            return "bootstrap: no admin yet"
        if self.actor not in admins:
            raise PermissionDenied(
                f"{self.actor!r} may not change roles: that needs the admin role.",
                hint="Ask an admin (" + ", ".join(admins[:3]) + ") to do it.",
            )
        return None

    def grant(self, actor: str, role: str) -> None:
        """Give ``actor`` a role (audited)."""
        if not _ROLE.match(role):
            raise InvalidInput(f"Role {role!r} is invalid; known roles: {', '.join(KNOWN_ROLES)}.")
        if not actor or len(actor) > 256:
            raise InvalidInput(f"Actor {actor!r} is invalid.")
        with self.db.write() as conn:
            reason = self._authorise(conn)
            conn.execute(
                _sql.insert_for(conn, roles)
                .values(
                    actor=actor,
                    role=role,
                    granted_by=self.actor,
                    granted_at=int(time.time() * 1000),
                )
                .on_conflict_do_nothing(index_elements=["actor", "role"])
            )
            append_event(
                conn,
                actor=self.actor,
                action="role.grant",
                object_type="role",
                object_id=f"{actor}:{role}",
                after={"actor": actor, "role": role},
                reason=reason,
            )

    def revoke(self, actor: str, role: str) -> None:
        """Take a role away (audited)."""
        with self.db.write() as conn:
            self._authorise(conn)
            deleted = conn.execute(
                sa.delete(roles).where(roles.c.actor == actor, roles.c.role == role)
            ).rowcount
            if not deleted:
                raise NotFound(f"{actor!r} does not hold role {role!r}.")
            append_event(
                conn,
                actor=self.actor,
                action="role.revoke",
                object_type="role",
                object_id=f"{actor}:{role}",
                before={"actor": actor, "role": role},
            )
