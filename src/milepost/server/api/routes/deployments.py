"""``/api/v1`` routes: endpoints (deployments), their rollouts, status and decisions.

Reading is for viewers. Every change of what an endpoint serves (create, start a
rollout, advance, roll back, finalize, scale, mark consequential) needs the approver
role: it decides what answers in production. Pruning prediction logs deletes data:
admin.

Paths:

- ``GET /endpoints``: names; ``GET /endpoints/{name}``: spec and revision;
  ``GET /endpoints/{name}/status``: variants, traffic split, rollout progress,
  per-variant requests/errors/latency over ``window_seconds``, recent events.
- ``POST /endpoints``: create; ``POST /endpoints/{name}/rollouts``: start a rollout
  (``strategy``: canary, blue_green, shadow, rolling); ``POST .../advance`` (a canary's
  next step, a shadow into a canary, a blue/green preview to all traffic),
  ``.../switch``, ``.../promote``, ``.../rollback``, ``.../finalize``;
  ``PUT .../replicas``, ``PUT .../consequential``.
- ``GET /endpoints/{name}/decisions``, ``GET /decisions/{request_id}``.
- ``POST /prediction-logs/prune``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from milepost.server.api.auth import needs
from milepost.serving.spec import CanaryPolicy

if TYPE_CHECKING:
    from milepost.serving.service import DeploymentService

router = APIRouter(tags=["deployments"])

_APPROVER = needs("approver")


def _serving(request: Request) -> DeploymentService:
    serving: DeploymentService = request.app.state.rt.serving
    return serving


def _endpoint(name: str, spec: Any, revision: int) -> dict[str, Any]:
    return {"name": name, "revision": revision, "spec": spec.to_dict()}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EndpointCreate(_Body):
    """A new endpoint: tracking Production of ``model``, or pinned to ``version``."""

    name: str
    model: str
    version: int | None = None
    stage: str | None = None
    replicas: int = 1
    log_predictions: bool = True
    consequential: bool = False


class RolloutStart(_Body):
    """Roll ``version`` out with a strategy (``policy`` for a canary, ``share`` for a
    shadow; ``model`` another model than the endpoint's, pinned endpoints only)."""

    strategy: Literal["canary", "blue_green", "shadow", "rolling"] = "canary"
    version: int
    model: str | None = None
    policy: CanaryPolicy | None = None
    share: float | None = None


class Reason(_Body):
    """Why (recorded in the endpoint's events and the audit trail)."""

    reason: str | None = None


class Promote(_Body):
    """Why, and (a shadow turning into a canary) the canary's policy."""

    reason: str | None = None
    policy: CanaryPolicy | None = None


class Replicas(_Body):
    replicas: int


class Consequential(_Body):
    consequential: bool = True
    reason: str | None = None


class Prune(_Body):
    """Retention counts back from ``now`` (epoch ms; default now)."""

    now: int | None = None
    dry_run: bool = False


def _reason(body: Reason | None) -> str | None:
    return None if body is None else body.reason


@router.get("/endpoints")
def list_endpoints(request: Request) -> dict[str, Any]:
    """Every endpoint's name, in name order."""
    return {"items": _serving(request).list_endpoints()}


@router.post("/endpoints", status_code=201, openapi_extra=_APPROVER)
def create_endpoint(request: Request, body: EndpointCreate) -> dict[str, Any]:
    """Create an endpoint (it serves at once: approver)."""
    serving = _serving(request)
    serving.create(
        body.name,
        body.model,
        version=body.version,
        stage=body.stage,
        replicas=body.replicas,
        log_predictions=body.log_predictions,
        consequential=body.consequential,
    )
    return _endpoint(body.name, *serving.get(body.name))


@router.get("/endpoints/{name}")
def get_endpoint(request: Request, name: str) -> dict[str, Any]:
    """An endpoint's spec (variants, weights, replicas, rollout) and revision."""
    return _endpoint(name, *_serving(request).get(name))


@router.get("/endpoints/{name}/status")
def endpoint_status(request: Request, name: str, window_seconds: float = 300) -> dict[str, Any]:
    """What it tracks and whether the registry agrees, the rollout, recent events and
    per-variant requests, errors and latency over the last ``window_seconds``."""
    return _serving(request).status(name, window_seconds=window_seconds)


@router.post("/endpoints/{name}/rollouts", openapi_extra=_APPROVER)
def start_rollout(request: Request, name: str, body: RolloutStart) -> dict[str, Any]:
    """Start rolling a version out with a strategy."""
    serving = _serving(request)
    if body.strategy == "canary":
        spec = serving.canary(name, body.version, model=body.model, policy=body.policy)
    elif body.strategy == "blue_green":
        spec = serving.blue_green(name, body.version, model=body.model)
    elif body.strategy == "shadow":
        share = 1.0 if body.share is None else body.share
        spec = serving.shadow(name, body.version, model=body.model, share=share)
    else:
        spec = serving.rolling(name, body.version, model=body.model)
    return spec.to_dict()


@router.post("/endpoints/{name}/advance", openapi_extra=_APPROVER)
def advance(request: Request, name: str, body: Reason | None = None) -> dict[str, Any]:
    """Move the rollout on: a canary's next step (at the last, primary), a shadow into a
    canary, a blue/green preview to all traffic."""
    serving = _serving(request)
    rollout = serving.get(name)[0].rollout
    if rollout is not None and rollout.kind == "blue_green" and rollout.status == "preview":
        return serving.switch(name, reason=_reason(body)).to_dict()
    return serving.promote(name, reason=_reason(body)).to_dict()


@router.post("/endpoints/{name}/switch", openapi_extra=_APPROVER)
def switch(request: Request, name: str, body: Reason | None = None) -> dict[str, Any]:
    """Blue/green: all traffic to the candidate at once (the old one stays warm)."""
    return _serving(request).switch(name, reason=_reason(body)).to_dict()


@router.post("/endpoints/{name}/promote", openapi_extra=_APPROVER)
def promote(request: Request, name: str, body: Promote | None = None) -> dict[str, Any]:
    """A canary's next step, or a shadow into a canary (with ``policy``)."""
    body = body or Promote()
    return _serving(request).promote(name, reason=body.reason, policy=body.policy).to_dict()


@router.post("/endpoints/{name}/rollback", openapi_extra=_APPROVER)
def rollback(request: Request, name: str, body: Reason | None = None) -> dict[str, Any]:
    """Back to the previous version, instantly."""
    return _serving(request).rollback(name, reason=_reason(body)).to_dict()


@router.post("/endpoints/{name}/finalize", openapi_extra=_APPROVER)
def finalize(request: Request, name: str) -> dict[str, Any]:
    """Retire the previous version (no rollback after this)."""
    return _serving(request).finalize(name).to_dict()


@router.put("/endpoints/{name}/replicas", openapi_extra=_APPROVER)
def set_replicas(request: Request, name: str, body: Replicas) -> dict[str, Any]:
    """Set the replica count per host."""
    return _serving(request).set_replicas(name, body.replicas).to_dict()


@router.put("/endpoints/{name}/consequential", openapi_extra=_APPROVER)
def set_consequential(request: Request, name: str, body: Consequential) -> dict[str, Any]:
    """Mark the endpoint as making consequential decisions (or unmark it)."""
    spec = _serving(request).set_consequential(name, body.consequential, reason=body.reason)
    return spec.to_dict()


@router.get("/endpoints/{name}/decisions")
def list_decisions(
    request: Request, name: str, since_ms: int | None = None, limit: int = 50
) -> dict[str, Any]:
    """A consequential endpoint's recorded decisions, newest first."""
    found = _serving(request).decisions(name, since_ms=since_ms, limit=limit)
    return {"items": [d.to_dict() for d in found]}


@router.get("/decisions/{request_id}")
def get_decision(request: Request, request_id: str, row: int = 0) -> dict[str, Any]:
    """One decision by the request id of its answer."""
    return _serving(request).decision(request_id, row=row).to_dict()


@router.post("/prediction-logs/prune", openapi_extra=needs("admin"))
def prune_prediction_logs(request: Request, body: Prune | None = None) -> dict[str, Any]:
    """Delete prediction logs and decision records past their retention (admin)."""
    body = body or Prune()
    return _serving(request).prune_prediction_logs(now=body.now, dry_run=body.dry_run).to_dict()
