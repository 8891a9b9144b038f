"""API tokens: who a request to ``milepost server`` (or a model or feature server) is.

A token belongs to a user (the identity recorded as the actor of everything done with
it) and carries a role, the most it may do:

======== ==============================================================================
viewer   read everything
member   + log runs, register data and models, request promotions, manage monitors
approver + approve or reject promotions, deploy to Production, roll back endpoints
admin    + tokens, roles and settings
======== ==============================================================================

Only a SHA-256 hash of the secret is stored (the secret is 256 random bits, so a slow
hash adds nothing); the secret is shown once, at creation. Tokens expire (90 days unless
told otherwise) and can be revoked; both take effect on the next request. A token's role
is capped by the user's grants: an approver or admin token whose user has since lost that
role (``milepost roles revoke``) acts as a member.

Creating and revoking tokens needs the admin role. On a fresh store nobody holds it: the
first token created (locally, with access to the metadata store) makes its creator admin,
as the first role grant does (:mod:`milepost.governance.roles`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost._records import record_dict, short
from milepost.errors import (
    InvalidInput,
    MilepostError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from milepost.stores.audit import append_event
from milepost.stores.schema import api_tokens
from milepost.stores.schema import roles as role_grants

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable

    from milepost.governance.roles import RoleService
    from milepost.stores.metadata import MetadataStore

__all__ = [
    "ROLES",
    "ApiToken",
    "CachedAuthenticator",
    "Principal",
    "TokenService",
    "looks_like_token",
    "role_allows",
]

log = logging.getLogger("milepost.governance")

#: The roles a token can carry, least to most.
ROLES = ("viewer", "member", "approver", "admin")
#: Days a token lives unless told otherwise.
DEFAULT_EXPIRY_DAYS = 90.0
_PREFIX = "mp_"
_SECRET = re.compile(r"mp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_DAY_MS = 86_400_000
#: ``last_used_at`` is written at most this often per token (a read should not write).
_TOUCH_MS = 60_000


def role_allows(held: str, needed: str) -> bool:
    """Whether a holder of ``held`` may do what needs ``needed``."""
    return ROLES.index(held) >= ROLES.index(needed)


def looks_like_token(secret: str) -> bool:
    """Whether ``secret`` has the shape of a Milepost API token (``mp_<id>_<random>``);
    says nothing about whether it is valid."""
    return _SECRET.fullmatch(secret.strip()) is not None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    """A token as stored (never its secret). Times are epoch ms; None: never/not yet."""

    token_id: str
    name: str
    user: str
    role: str
    project: str | None
    created_by: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    revoked_by: str | None
    last_used_at: int | None

    def state(self, now_ms: int | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``state``)."""
        return record_dict(self, extra={"state": self.state()})

    def __repr__(self) -> str:
        return f"ApiToken({self.token_id} {short(self.name)!r} {self.user} {self.role})"


@dataclass(frozen=True)
class Principal:
    """Who a request is: the token's user, the role it acts with, the token and its scope."""

    user: str
    role: str
    token_id: str | None = None
    project: str | None = None

    def allows(self, needed: str) -> bool:
        """Whether this principal may do what needs the role ``needed``."""
        return role_allows(self.role, needed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


def _row(r: Any) -> ApiToken:
    return ApiToken(
        r.token_id,
        r.name,
        r.user,
        r.role,
        r.project,
        r.created_by,
        int(r.created_at),
        None if r.expires_at is None else int(r.expires_at),
        None if r.revoked_at is None else int(r.revoked_at),
        r.revoked_by,
        None if r.last_used_at is None else int(r.last_used_at),
    )


_COLUMNS = [c for c in api_tokens.c if c.name != "secret_hash"]


class TokenService:
    """Create, list, revoke and check API tokens."""

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        actor: str,
        roles: RoleService,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.actor = actor
        self.roles = roles
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def _require_admin(self) -> None:
        admins = self.roles.holders("admin")
        if not admins:
            # The bootstrap: the first token (or grant) makes its creator admin.
            self.roles.grant(self.actor, "admin")
            return
        if self.actor not in admins:
            raise PermissionDenied(
                f"{self.actor!r} may not manage API tokens: that needs the admin role.",
                hint="Ask an admin (" + ", ".join(admins[:3]) + ") to do it.",
            )

    def create(
        self,
        name: str,
        role: str = "member",
        *,
        user: str | None = None,
        expires_in_days: float | None = DEFAULT_EXPIRY_DAYS,
        project: str | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token and its secret (shown only now; only its hash is stored).

        Args:
            name: what the token is for (``ci``, ``alice-laptop``).
            role: viewer, member, approver or admin.
            user: whose token it is (the actor of what it does); default the creator.
            expires_in_days: lifetime; None for a token that never expires.
            project: scope the token to one project's experiments; None for all.

        Needs the admin role (the first token on a fresh store makes its creator admin).
        An approver or admin token also grants its user that role (audited), so that the
        approval gate and role checks see it.

        Raises:
            InvalidInput: a bad name, role, user, lifetime or project.
            PermissionDenied: the creator is not an admin.
        """
        name = check.name(name, "Token name", max_length=128)
        role = check.choice(role, "role", ROLES)
        user = self.actor if user is None else check.name(user, "User")
        if project is not None:
            project = check.name(project, "Project")
        now = self._now()  # created_at and expires_at from one reading of the clock
        expires_at: int | None = None
        if expires_in_days is not None:
            if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int | float):
                raise InvalidInput(
                    "expires_in_days must be a number of days, got "
                    f"{check.short_repr(expires_in_days)}.",
                    hint="Pass None (CLI: --no-expiry) for a token that never expires.",
                )
            if not 0 < expires_in_days <= 3650:
                raise InvalidInput(
                    f"expires_in_days must be between 0 and 3650, got {expires_in_days}.",
                    hint="Pass None (CLI: --no-expiry) for a token that never expires.",
                )
            expires_at = now + int(expires_in_days * _DAY_MS)
        self._require_admin()
        if role in ("approver", "admin") and not self.roles.has(user, role):
            self.roles.grant(user, role)
        token_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        token = ApiToken(
            token_id, name, user, role, project, self.actor, now, expires_at,
            None, None, None,
        )  # fmt: skip
        with self.db.write() as conn:
            conn.execute(
                sa.insert(api_tokens).values(
                    **{k: v for k, v in record_dict(token).items()}, secret_hash=_hash(secret)
                )
            )
            append_event(
                conn,
                actor=self.actor,
                action="token.create",
                object_type="token",
                object_id=token_id,
                after={
                    "name": name,
                    "user": user,
                    "role": role,
                    "project": project,
                    "expires_at": expires_at,
                },
            )
        return token, secret

    def list(self, *, include_revoked: bool = False) -> builtins.list[ApiToken]:
        """Every token, newest first (revoked ones only when asked)."""
        query = sa.select(*_COLUMNS).order_by(api_tokens.c.created_at.desc())
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def get(self, ref: str) -> ApiToken:
        """A token by id or name (a name must be unique among tokens not revoked)."""
        ref = check.name(ref, "Token")
        with self.db.read() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(api_tokens.c.token_id == ref)).first()
            if row is not None:
                return _row(row)
            rows = conn.execute(
                sa.select(*_COLUMNS).where(
                    api_tokens.c.name == ref, api_tokens.c.revoked_at.is_(None)
                )
            ).all()
        if len(rows) == 1:
            return _row(rows[0])
        if rows:
            raise InvalidInput(
                f"{len(rows)} tokens are named {ref!r}.",
                hint="Name one by id: " + ", ".join(r.token_id for r in rows) + ".",
            )
        raise NotFound(f"No token {ref!r}.", hint="`milepost tokens list` shows them.")

    def revoke(self, ref: str, *, reason: str | None = None) -> ApiToken:
        """Revoke a token (by id or name); it is refused from the next request on."""
        reason = check.optional_text(reason, "reason")
        token = self.get(ref)
        self._require_admin()
        if token.revoked_at is not None:
            return token
        now = self._now()
        with self.db.write() as conn:
            conn.execute(
                sa.update(api_tokens)
                .where(api_tokens.c.token_id == token.token_id)
                .values(revoked_at=now, revoked_by=self.actor)
            )
            append_event(
                conn,
                actor=self.actor,
                action="token.revoke",
                object_type="token",
                object_id=token.token_id,
                before={"name": token.name, "user": token.user, "role": token.role},
                reason=reason,
            )
        return self.get(token.token_id)

    def authenticate(self, secret: str) -> Principal:
        """The principal a token secret stands for.

        Raises:
            Unauthenticated: malformed, unknown, revoked or expired (the message says
                which, never echoing the secret).
        """
        match = _SECRET.fullmatch(secret.strip()) if isinstance(secret, str) else None
        if match is None:
            raise Unauthenticated(
                "The token is not a Milepost API token.",
                hint="Create one with `milepost tokens create --name NAME --role ROLE` and "
                "send it as 'Authorization: Bearer <token>' (MILEPOST_TOKEN for the client).",
            )
        token_id = match.group(1)
        # one read: the token and whether its user still holds the token's role
        holds = (
            sa.exists()
            .where(
                role_grants.c.actor == api_tokens.c.user, role_grants.c.role == api_tokens.c.role
            )
            .label("holds_role")
        )
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(api_tokens, holds).where(api_tokens.c.token_id == token_id)
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(match.group(0))):
            raise Unauthenticated(
                "Unknown API token.", hint="Check MILEPOST_TOKEN, or create a new token."
            )
        token = _row(row)
        now = self._now()
        state = token.state(now)
        if state != "active":
            raise Unauthenticated(
                f"API token {token.token_id} ({token.name!r}) is {state}.",
                hint="Ask an admin for a new one (`milepost tokens create`).",
            )
        role = token.role
        if role in ("approver", "admin") and not row.holds_role:
            role = "member"  # the user lost the role since the token was made
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_MS:
            try:
                with self.db.write() as conn:
                    conn.execute(
                        sa.update(api_tokens)
                        .where(api_tokens.c.token_id == token_id)
                        .values(last_used_at=now)
                    )
            except MilepostError as exc:  # bookkeeping: never a reason to refuse a caller
                log.warning("Could not record the use of API token %s: %s", token_id, exc)
        return Principal(token.user, role, token.token_id, token.project)


class CachedAuthenticator:
    """:meth:`TokenService.authenticate` with each answer kept for ``ttl`` seconds.

    The model and feature servers answer many requests per second with the same few
    tokens; checking each against the metadata store would put a database read on every
    request. An answer (a principal, or the refusal of an unknown, expired or revoked
    token) is reused for ``ttl`` seconds, so a revocation, an expiry or a role taken away
    takes effect within that bound (the ``auth_cache_seconds`` setting). The platform
    server does not cache: there a revocation counts from the next request.

    At most ``max_entries`` answers are kept (beyond, the expired ones go, then all), so
    a flood of made-up tokens costs memory only up to that bound. Thread-safe.

    Args:
        tokens: the service that checks a token the first time.
        ttl: seconds an answer is reused; 0 checks every time.
        max_entries: answers kept at most.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        tokens: TokenService,
        *,
        ttl: float = 5.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._answers: dict[str, tuple[float, Principal | Unauthenticated]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def accepts(secret: str) -> bool:
        """Whether ``secret`` has the shape of an API token (checked without a lookup)."""
        return looks_like_token(secret)

    def cached(self, secret: str) -> Principal | None:
        """The principal kept for ``secret``, None when nothing (fresh) is kept.

        Raises:
            Unauthenticated: the token was refused within the last ``ttl`` seconds.
        """
        kept = self._answers.get(_hash(secret))
        if kept is None or kept[0] <= self.clock():
            return None
        answer = kept[1]
        if isinstance(answer, Unauthenticated):
            raise Unauthenticated(answer.message, hint=answer.hint)
        return answer

    def authenticate(self, secret: str) -> Principal:
        """The principal ``secret`` stands for: kept, else checked (and kept).

        Raises:
            Unauthenticated: malformed, unknown, revoked or expired.
        """
        found = self.cached(secret)
        if found is not None:
            return found
        key = _hash(secret)
        try:
            answer: Principal | Unauthenticated = self.tokens.authenticate(secret)
        except Unauthenticated as exc:
            answer = exc
        if self.ttl > 0:
            with self._lock:
                if len(self._answers) >= self.max_entries:
                    now = self.clock()
                    for old in [k for k, (until, _) in self._answers.items() if until <= now]:
                        del self._answers[old]
                    if len(self._answers) >= self.max_entries:
                        self._answers.clear()
                self._answers[key] = (self.clock() + self.ttl, answer)
        if isinstance(answer, Unauthenticated):
            raise Unauthenticated(answer.message, hint=answer.hint)
        return answer
