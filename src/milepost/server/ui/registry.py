"""The model registry: models, versions with stages and aliases, promotion requests with
their gate results, the approval queue (approve and reject buttons for approvers) and
each model's stage history.

The buttons only show for a caller whose role allows them; the promotion service
enforces roles and the four-eyes rule anyway, and its refusal is shown on the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from milepost.errors import MilepostError, NotFound
from milepost.errors import http_status as status_of
from milepost.governance.tokens import Principal
from milepost.server.ui._render import Form, caller, page_router, posted, redirect, render

__all__ = ["router"]

router = page_router()

Caller = Annotated[Principal, Depends(caller)]
#: Requests the approvals page lists besides the pending ones (newest first).
RECENT_REQUESTS = 20


@router.get("/models")
def models(request: Request, principal: Caller) -> Response:
    """Every registered model, its stages and aliases."""
    rt = request.app.state.rt
    found = sorted(rt.models.list_models(), key=lambda m: m.name.lower())
    pending = rt.promotion.list_requests(status="pending_approval")
    return render(
        request,
        "models.html",
        principal,
        title="Models",
        models=found,
        pending={m.name: sum(1 for r in pending if r.model == m.name) for m in found},
    )


@router.get("/models/{name}")
def model(request: Request, principal: Caller, name: str) -> Response:
    """A model's versions, promotion requests and stage history."""
    rt = request.app.state.rt
    registered = rt.models.get_model(name)
    versions = sorted(rt.models.versions(name), key=lambda v: -v.version)
    requests = rt.promotion.list_requests(model=name)[:RECENT_REQUESTS]
    try:
        policy = rt.promotion.get_policy(name)
    except NotFound:
        policy = None
    metric_keys = sorted({k for v in versions for k in v.metrics})[:6]
    return render(
        request,
        "model.html",
        principal,
        title=f"Model {name}",
        model=registered,
        versions=versions,
        metric_keys=metric_keys,
        requests=requests,
        history=list(reversed(rt.models.history(name))),
        policy=policy,
    )


def _approvals(
    request: Request, principal: Principal, *, status: int = 200, **extra: Any
) -> Response:
    rt = request.app.state.rt
    pending = rt.promotion.list_requests(status="pending_approval")
    decided = [r for r in rt.promotion.list_requests() if r.status != "pending_approval"][
        :RECENT_REQUESTS
    ]
    return render(
        request,
        "approvals.html",
        principal,
        status=status,
        title="Approvals",
        pending=pending,
        decided=decided,
        **extra,
    )


@router.get("/approvals")
def approvals(request: Request, principal: Caller) -> Response:
    """Promotion requests waiting on an approver, and the recent decisions."""
    return _approvals(request, principal)


@router.get("/promotions/{request_id}")
def promotion(
    request: Request, principal: Caller, request_id: str, done: str | None = None
) -> Response:
    """One promotion request: its gates, their results, who decided."""
    req = request.app.state.rt.promotion.get_request(request_id)
    return render(
        request,
        "promotion.html",
        principal,
        title=f"Promotion of {req.model} v{req.version}",
        req=req,
        done=done if done in ("approved", "rejected") else None,
    )


def _decide(request: Request, form: Form, request_id: str, verb: str) -> Response:
    """Approve or reject; a refusal (role, four eyes, stale) is shown on the queue."""
    rt = request.app.state.rt
    try:
        form.require("approver", f"{verb} promotions")
        action = rt.promotion.approve if verb == "approve" else rt.promotion.reject
        action(request_id, reason=form.get("reason"))
    except MilepostError as exc:
        return _approvals(
            request,
            form.principal,
            status=status_of(exc),
            problem=exc.message,
            problem_hint=exc.hint,
        )
    return redirect(f"/promotions/{request_id}?done={verb}d")


@router.post("/promotions/{request_id}/approve")
def approve(request: Request, request_id: str, form: Annotated[Form, Depends(posted)]) -> Response:
    """Approve a waiting promotion (approver; not the requester, under four eyes)."""
    return _decide(request, form, request_id, "approve")


@router.post("/promotions/{request_id}/reject")
def reject(request: Request, request_id: str, form: Annotated[Form, Depends(posted)]) -> Response:
    """Reject a waiting promotion (approver)."""
    return _decide(request, form, request_id, "reject")
