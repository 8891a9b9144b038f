"""Roles: who may approve promotions (``approver``) and manage roles (``admin``).

Granting and revoking need the ``admin`` role. Bootstrap: while nobody has ever held it,
the first grant (of any role) also makes its granter admin, audited as such; from then
on there is always an admin, because revoking the last one is refused. If the admin rows
vanish from the table while the audit trail still records an admin, that was done
outside Milepost, and the bootstrap stays closed (``milepost audit verify`` names the
missing grant).

In embedded mode anyone with write access to the database, or who sets
``MILEPOST_USER``, can act as anyone: there is no authentication. The audit trail records
every change made through Milepost, and ``audit verify`` names role rows changed behind
its back; the server (later) ties actors to tokens.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost._records import record_dict
from milepost.errors import Conflict, NotFound, PermissionDenied
from milepost.stores import _sql
from milepost.stores.audit import append_event
from milepost.stores.schema import audit_events, roles

if TYPE_CHECKING:
    import builtins

    from milepost.stores.metadata import MetadataStore

__all__ = ["KNOWN_ROLES", "RoleGrant", "RoleService"]

KNOWN_ROLES = ("admin", "approver")
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def _role(role: object) -> str:
    return check.name(
        role,
        "Role",
        max_length=64,
        pattern=_ROLE,
        rule="lowercase letters, digits, '_' and '-', starting with a letter",
        hint=f"Known roles: {', '.join(KNOWN_ROLES)}.",
    )


def _actor(actor: object) -> str:
    return check.name(actor, "Actor")


BOOTSTRAP_REASON = "bootstrap: the first grant makes its granter admin"


@dataclass(frozen=True)
class RoleGrant:
    """``actor`` holds ``role``, granted by ``granted_by`` at ``granted_at`` (epoch ms)."""

    actor: str
    role: str
    granted_by: str
    granted_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


class RoleService:
    """Grant, revoke and check roles."""

    actor = ActorAttribute()

    def __init__(self, db: MetadataStore, actor: str) -> None:
        self.db = db
        self.actor = actor

    def has(self, actor: str, role: str) -> bool:
        """Whether ``actor`` holds ``role``."""
        _actor(actor)
        _role(role)
        with self.db.read() as conn:
            return (
                conn.execute(
                    sa.select(roles.c.actor).where(roles.c.actor == actor, roles.c.role == role)
                ).first()
                is not None
            )

    def holders(self, role: str) -> list[str]:
        """Everyone holding ``role``."""
        _role(role)
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(roles.c.actor).where(roles.c.role == role).order_by(roles.c.actor)
                ).scalars()
            )

    def list(self) -> builtins.list[RoleGrant]:
        """Every grant, by role then actor."""
        with self.db.read() as conn:
            return [
                RoleGrant(r.actor, r.role, r.granted_by, int(r.granted_at))
                for r in conn.execute(
                    sa.select(
                        roles.c.actor, roles.c.role, roles.c.granted_by, roles.c.granted_at
                    ).order_by(roles.c.role, roles.c.actor)
                )
            ]

    def _admins(self, conn: sa.Connection) -> builtins.list[str]:
        """The admins, with role changes serialised (PostgreSQL: an advisory lock)."""
        _sql.advisory_xact_lock(conn, _sql.ROLES_LOCK)
        return list(
            conn.execute(
                sa.select(roles.c.actor).where(roles.c.role == "admin").order_by(roles.c.actor)
            ).scalars()
        )

    def _authorise(self, admins: builtins.list[str]) -> None:
        if self.actor not in admins:
            raise PermissionDenied(
                f"{self.actor!r} may not change roles: that needs the admin role.",
                hint="Ask an admin (" + ", ".join(admins[:3]) + ") to do it.",
            )

    @staticmethod
    def _recorded_admins(conn: sa.Connection) -> tuple[set[str], int]:
        """Admins by the audit trail's role events, and the last such event's seq."""
        held: set[str] = set()
        last = 0
        for seq, action, object_id in conn.execute(
            sa.select(audit_events.c.seq, audit_events.c.action, audit_events.c.object_id)
            .where(audit_events.c.object_type == "role", audit_events.c.object_id.like("%:admin"))
            .order_by(audit_events.c.seq)
        ):
            actor = object_id.rpartition(":")[0]
            if action == "role.grant":
                held.add(actor)
            elif action == "role.revoke":
                held.discard(actor)
            last = int(seq)
        return held, last

    def _bootstrap(self, conn: sa.Connection) -> RoleGrant:
        """Make the granter the first admin, unless the trail says admins exist."""
        recorded, seq = self._recorded_admins(conn)
        if recorded:
            raise PermissionDenied(
                "Nobody holds the admin role, but the audit trail says "
                + ", ".join(sorted(recorded))
                + f" should (event {seq}): the roles table was changed outside Milepost, so "
                "the first-grant bootstrap stays closed.",
                hint="Run `milepost audit verify` to see what changed, and restore the admin "
                "rows it names (or the database from a backup).",
            )
        return self._insert(conn, self.actor, "admin", reason=BOOTSTRAP_REASON)

    def _insert(
        self, conn: sa.Connection, actor: str, role: str, *, reason: str | None
    ) -> RoleGrant:
        grant = RoleGrant(actor, role, self.actor, int(time.time() * 1000))
        conn.execute(
            _sql.insert_for(conn, roles)
            .values(**grant.to_dict())
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
        return grant

    def grant(self, actor: str, role: str) -> builtins.list[RoleGrant]:
        """Give ``actor`` a role (audited); returns the grants made.

        Needs the admin role. The very first grant also makes its granter admin (the
        bootstrap), so that list then starts with the granter's admin grant.

        Raises:
            InvalidInput: the role or actor name is invalid.
            PermissionDenied: the granter is not an admin.
        """
        _role(role)
        _actor(actor)
        made: builtins.list[RoleGrant] = []
        with self.db.write() as conn:
            admins = self._admins(conn)
            if not admins:
                made.append(self._bootstrap(conn))
                if (actor, role) == (self.actor, "admin"):
                    return made
            else:
                self._authorise(admins)
            made.append(self._insert(conn, actor, role, reason=None))
        return made

    def revoke(self, actor: str, role: str) -> None:
        """Take a role away (audited).

        Raises:
            PermissionDenied: the revoker is not an admin.
            NotFound: ``actor`` does not hold ``role``.
            Conflict: ``actor`` is the last admin (grant another admin first).
        """
        _role(role)
        _actor(actor)
        with self.db.write() as conn:
            admins = self._admins(conn)
            if not admins:
                raise PermissionDenied(
                    f"{self.actor!r} may not change roles: nobody holds the admin role yet.",
                    hint="The first `milepost roles grant` makes its granter admin.",
                )
            self._authorise(admins)
            if role == "admin" and admins == [actor]:
                raise Conflict(
                    f"{actor!r} is the last admin: revoking it would leave nobody able to "
                    "manage roles.",
                    hint="Grant another admin first (`milepost roles grant USER admin`), "
                    "then revoke this one.",
                )
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
