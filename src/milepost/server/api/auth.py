"""Who is calling, and may they: tokens, roles and the acting identity.

:class:`AuthMiddleware` reads the caller's token (``Authorization: Bearer <token>``, or
the web UI's session cookie), resolves it to a :class:`~milepost.governance.tokens.Principal`
and answers the request *as* that user (:func:`milepost._actor.acting_as`), so the token's
identity is the actor in the audit trail and the author of runs and model versions.

:func:`authorize`, a dependency of every ``/api/v1`` route, refuses a caller without a
valid token (401) or with too small a role (403). Reads (GET, HEAD) need ``viewer`` and
writes ``member``, unless the route declares more with ``openapi_extra=needs("approver")``;
the required role is published in the OpenAPI schema as ``x-milepost-role``. A token
scoped to a project never passes an admin check (it could otherwise mint an unscoped
token).

With ``AuthConfig(required=False)`` (``milepost server --no-auth``, loopback only) every
caller acts as the server's own user with the admin role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import Request

from milepost._actor import acting_as
from milepost.errors import MilepostError, PermissionDenied, Unauthenticated
from milepost.governance.tokens import ROLES, Principal

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ROLE_KEY",
    "SESSION_COOKIE",
    "AuthConfig",
    "AuthMiddleware",
    "authorize",
    "needs",
    "principal_of",
    "require_role",
    "required_role",
]

#: Where a route's required role is declared (``openapi_extra``) and published.
ROLE_KEY = "x-milepost-role"
#: The web UI's session cookie (HttpOnly, SameSite=Strict).
SESSION_COOKIE = "milepost_session"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AuthConfig:
    """How the server authenticates.

    Attributes:
        required: tokens required (the default). False only on loopback
            (``--no-auth``): every caller is the server's user, as admin.
    """

    required: bool = True


def needs(role: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that needs more than the default role."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return {ROLE_KEY: role}


def required_role(method: str, openapi_extra: dict[str, Any] | None) -> str:
    """The role a route needs: its declaration, else viewer to read and member to write."""
    declared = (openapi_extra or {}).get(ROLE_KEY)
    if declared:
        return str(declared)
    return "viewer" if method.upper() in _READS else "member"


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""  # present but not a bearer token: refused as malformed
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope.get("headers", ()):
        if header == b"cookie":
            cookies: str = value.decode("latin-1")
            for part in cookies.split(";"):
                key, _, val = part.strip().partition("=")
                if key == name and val:
                    return val
    return None


class AuthMiddleware:
    """Resolve the caller once per request and answer it as them (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        app_state = scope["app"].state
        config: AuthConfig = app_state.auth
        principal: Principal | None = None
        if not config.required:
            rt = app_state.rt
            principal = Principal(rt.settings.actor(), "admin")
        else:
            secret = _bearer(scope)
            if secret is None and not scope["path"].startswith("/api/"):
                # The UI's session cookie counts only outside /api (the UI's own forms
                # carry a CSRF token); API calls send the token themselves.
                secret = _cookie(scope, SESSION_COOKIE)
            if secret is not None:
                try:
                    principal = await anyio.to_thread.run_sync(
                        app_state.rt.tokens.authenticate, secret
                    )
                except MilepostError as exc:
                    state["auth_error"] = exc
        state["principal"] = principal
        if principal is None:
            await self.app(scope, receive, send)
            return
        with acting_as(principal.user):
            await self.app(scope, receive, send)


def principal_of(request: Request) -> Principal | None:
    """The caller of ``request`` (None: no valid token)."""
    return getattr(request.state, "principal", None)


def authorize(request: Request) -> Principal:
    """Refuse a caller without a valid token (401) or with too small a role (403) for
    the route (its declared role, else viewer to read and member to write)."""
    route = request.scope.get("route")
    return require_role(
        request, required_role(request.method, getattr(route, "openapi_extra", None))
    )


def require_role(request: Request, needed: str) -> Principal:
    """The caller, if they hold ``needed`` (for checks that depend on the request's
    content, e.g. a stage change to Production needs approver)."""
    error = getattr(request.state, "auth_error", None)
    if error is not None:
        raise error
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated(
            "This needs an API token.",
            hint="Send 'Authorization: Bearer <token>' (MILEPOST_TOKEN for the client); "
            "an admin creates one with `milepost tokens create --name NAME --role ROLE`.",
        )
    if needed == "admin" and principal.project is not None:
        # tokens, roles, pruning, the whole audit trail: beyond any one project, and a
        # scoped token must not mint itself an unscoped one
        raise PermissionDenied(
            f"This token is limited to project {principal.project!r}; administration "
            "(tokens, roles, stores-wide operations) is outside it.",
            hint="Use an admin token without a project.",
            details={"needed": needed, "held": principal.role, "project": principal.project},
        )
    if not principal.allows(needed):
        raise PermissionDenied(
            f"{principal.user!r} (role {principal.role}) may not do this: it needs the "
            f"{needed} role.",
            hint="Ask an admin for a token with that role.",
            details={"needed": needed, "held": principal.role},
        )
    return principal
