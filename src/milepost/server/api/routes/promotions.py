"""``/api/v1`` routes: promotion policies, requests, approvals and rejections.

A member requests a promotion; the model's gates decide. A request to Production moves
Production by itself unless an approval gate waits on it, so without one on the
Production path it needs the approver role too. Approving, rejecting and changing a
policy need approver. The four-eyes rule (the approver is not the requester) is the
PromotionService's, checked against the caller's identity, which the server acts as.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from milepost.server.api.auth import needs, require_role

router = APIRouter(tags=["promotions"])


class PolicyBody(BaseModel):
    """A promotion policy as its ``to_dict()`` mapping (``staging``, ``production``,
    ``allow_direct_production``, ``deploy``)."""

    model_config = ConfigDict(extra="forbid")
    policy: dict[str, Any]


class PromoteBody(BaseModel):
    """Request a promotion of ``model`` version ``version`` to ``to``."""

    model_config = ConfigDict(extra="forbid")
    model: str
    version: int
    to: str
    reason: str | None = None


class DecisionBody(BaseModel):
    """Approve or reject, with an optional reason."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


def _rt(request: Request) -> Any:
    return request.app.state.rt


@router.get("/models/{name}/policy")
def get_policy(request: Request, name: str) -> dict[str, Any]:
    """A model's promotion policy (empty when none is set)."""
    result: dict[str, Any] = _rt(request).promotion.get_policy(name).to_dict()
    return result


@router.put("/models/{name}/policy", openapi_extra=needs("approver"))
def set_policy(request: Request, name: str, body: PolicyBody) -> dict[str, Any]:
    """Set a model's promotion policy (audited); answers it as stored."""
    result: dict[str, Any] = _rt(request).promotion.set_policy(name, body.policy).to_dict()
    return result


@router.delete("/models/{name}/policy", status_code=204, openapi_extra=needs("approver"))
def clear_policy(request: Request, name: str) -> Response:
    """Clear a model's promotion policy (audited)."""
    _rt(request).promotion.set_policy(name, None)
    return Response(status_code=204)


@router.post("/promotions", status_code=201)
def promote(request: Request, body: PromoteBody) -> dict[str, Any]:
    """Run the gates for ``to`` and transition, wait for approval, or refuse (409 with
    ``gate_failed`` and every gate's result in ``details``)."""
    rt = _rt(request)
    if isinstance(body.to, str) and body.to.strip().lower() == "production":
        policy = rt.promotion.get_policy(body.model)
        if not any(g.kind == "approval" for g in policy.gates_for("Production")):
            require_role(request, "approver")
    result: dict[str, Any] = rt.promotion.promote(
        body.model, body.version, body.to, reason=body.reason
    ).to_dict()
    return result


@router.get("/promotions")
def list_requests(
    request: Request,
    status: Annotated[list[str] | None, Query(description="repeat for several")] = None,
    model: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """Requests with their gate results, newest first."""
    wanted: str | tuple[str, ...] | None = None
    if status:
        wanted = status[0] if len(status) == 1 else tuple(status)
    requests = _rt(request).promotion.list_requests(status=wanted, model=model, version=version)
    return {"items": [r.to_dict() for r in requests]}


@router.get("/promotions/{request_id}")
def get_request(request: Request, request_id: str) -> dict[str, Any]:
    """One request (its id or a prefix of at least 4 hex digits) with its gate results."""
    result: dict[str, Any] = _rt(request).promotion.get_request(request_id).to_dict()
    return result


@router.post("/promotions/{request_id}/approve", openapi_extra=needs("approver"))
def approve(request: Request, request_id: str, body: DecisionBody) -> dict[str, Any]:
    """Approve a waiting request (not your own, unless the policy allows it)."""
    result: dict[str, Any] = (
        _rt(request).promotion.approve(request_id, reason=body.reason).to_dict()
    )
    return result


@router.post("/promotions/{request_id}/reject", openapi_extra=needs("approver"))
def reject(request: Request, request_id: str, body: DecisionBody) -> dict[str, Any]:
    """Reject a waiting request."""
    result: dict[str, Any] = _rt(request).promotion.reject(request_id, reason=body.reason).to_dict()
    return result
