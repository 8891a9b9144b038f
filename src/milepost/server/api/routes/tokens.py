"""``/api/v1`` routes: API tokens and role grants (``rt.tokens``, ``rt.roles``).

Tokens are the admin's business: listing, creating and revoking them need the admin
role (a token's secret is answered once, by the POST that creates it). Role grants are
read by anyone with a token (a requester needs to know who may approve) and changed by
admins only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from milepost.governance.tokens import DEFAULT_EXPIRY_DAYS
from milepost.server.api.auth import needs

router = APIRouter(tags=["tokens"])

_ADMIN = needs("admin")


class TokenCreate(BaseModel):
    """A new token: whose, with which role, for how long, for which project."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the token is for (ci, alice-laptop).", max_length=128)
    role: str = Field(default="member", description="viewer, member, approver or admin.")
    user: str | None = Field(
        default=None,
        description="Whose token it is (the actor of what it does); default the caller.",
    )
    expires_in_days: float | None = Field(
        default=DEFAULT_EXPIRY_DAYS,
        description="Lifetime in days (0 < days <= 3650); null for a token that never expires.",
    )
    project: str | None = Field(default=None, description="Scope the token to one project.")


class TokenRevoke(BaseModel):
    """Why a token is revoked (recorded in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, description="Recorded with the revocation.")


class RoleGrantBody(BaseModel):
    """Give ``user`` the role ``role``."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(description="The user, as Milepost records them.")
    role: str = Field(description="approver or admin.")


@router.get("/tokens", openapi_extra=_ADMIN)
def list_tokens(
    request: Request,
    include_revoked: Annotated[bool, Query(description="Also revoked tokens.")] = False,
) -> dict[str, Any]:
    """Every token, newest first (never a secret)."""
    tokens = request.app.state.rt.tokens.list(include_revoked=include_revoked)
    return {"items": [t.to_dict() for t in tokens]}


@router.post("/tokens", status_code=201, openapi_extra=_ADMIN)
def create_token(request: Request, body: TokenCreate) -> dict[str, Any]:
    """A new token and its secret: the only time the secret is shown."""
    token, secret = request.app.state.rt.tokens.create(
        body.name,
        body.role,
        user=body.user,
        expires_in_days=body.expires_in_days,
        project=body.project,
    )
    return {"token": token.to_dict(), "secret": secret}


@router.get("/tokens/{ref}", openapi_extra=_ADMIN)
def get_token(request: Request, ref: str) -> dict[str, Any]:
    """A token by id or name."""
    result: dict[str, Any] = request.app.state.rt.tokens.get(ref).to_dict()
    return result


@router.post("/tokens/{ref}/revoke", openapi_extra=_ADMIN)
def revoke_token(request: Request, ref: str, body: TokenRevoke | None = None) -> dict[str, Any]:
    """Revoke a token (by id or name): refused from the next request on."""
    reason = body.reason if body is not None else None
    result: dict[str, Any] = request.app.state.rt.tokens.revoke(ref, reason=reason).to_dict()
    return result


@router.get("/roles")
def list_roles(
    request: Request,
    role: Annotated[str | None, Query(description="Only the holders of this role.")] = None,
) -> dict[str, Any]:
    """Every role grant, by role then user."""
    grants = request.app.state.rt.roles.list()
    if role is not None:
        grants = [g for g in grants if g.role == role]
    return {"items": [g.to_dict() for g in grants]}


@router.post("/roles", status_code=201, openapi_extra=_ADMIN)
def grant_role(request: Request, body: RoleGrantBody) -> dict[str, Any]:
    """Give a user a role; answers the grants made (the very first also makes the caller
    admin)."""
    made = request.app.state.rt.roles.grant(body.user, body.role)
    return {"items": [g.to_dict() for g in made]}


@router.delete("/roles/{user}/{role}", status_code=204, openapi_extra=_ADMIN)
def revoke_role(request: Request, user: str, role: str) -> None:
    """Take a role away from a user (the last admin cannot be revoked)."""
    request.app.state.rt.roles.revoke(user, role)
