"""The retraining pipeline's deployments: the staging endpoint, and the first Production one.

- :func:`deploy_staging` serves the version that reached Staging on a staging endpoint
  pinned to it (``retrain(..., staging_endpoint="churn-staging")``): the endpoint is
  created the first time; afterwards the new version is loaded beside the old one, all
  traffic moves to it and the old one is retired (blue/green, switch, finalize: three
  audited changes of a pinned endpoint, which leave the registry alone). A staging
  endpoint is for trying the candidate before Production: nothing there carries a
  promotion.
- :func:`first_deployment` is what :func:`milepost.retraining.deploy_model` does when the
  policy deploys automatically and its endpoint does not exist yet while the model has
  no Production version: the candidate asks for Production through the policy's gates
  (:meth:`milepost.Client.promote`); when it enters, the endpoint is created tracking
  Production; an approval gate leaves it waiting, a failing gate refuses it.

Both use only the public API (:class:`milepost.Client`, the runtime's serving service), as
the rest of the template does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import milepost
from milepost.errors import GateFailed, InvalidInput, NotFound
from milepost.pipelines import step

# at run time, not under TYPE_CHECKING: the pipeline engine reads the steps' annotations
from milepost.retraining.records import Decision, Deployment, Staging

if TYPE_CHECKING:
    from milepost.serving.spec import EndpointSpec

__all__ = ["deploy_staging", "first_deployment"]


def _gates(details: Any) -> list[dict[str, Any]]:
    return list(details.get("gates", [])) if isinstance(details, dict) else []


def _failing(gates: list[dict[str, Any]]) -> list[str]:
    return [
        f"{g.get('name')}: {g.get('message')}"
        for g in gates
        if g.get("status") in ("failed", "error")
    ]


def _refused(exc: GateFailed) -> tuple[list[dict[str, Any]], str | None]:
    """The gate results and the request id a refusal carries."""
    request_id = exc.details.get("request_id") if isinstance(exc.details, dict) else None
    return _gates(exc.details), request_id


def _deployment(
    staging: Staging,
    action: str,
    reasons: list[str],
    *,
    endpoint: str | None = None,
    request_id: str | None = None,
    gates: list[dict[str, Any]] | None = None,
    step_name: str = "deploy_model",
) -> Deployment:
    candidate = staging.candidate
    return Deployment(
        model=candidate.model,
        version=candidate.version,
        action=action,
        endpoint=endpoint,
        request_id=request_id,
        gates=gates or [],
        decision=Decision(
            step_name,
            action,
            reasons,
            {"endpoint": endpoint, "request_id": request_id, "version": candidate.version},
        ),
    )


def endpoint_or_none(client: milepost.Client, name: str) -> EndpointSpec | None:
    """The endpoint's spec, or None when no endpoint has that name."""
    try:
        return client.get_endpoint(name)
    except NotFound:
        return None


@step(cache=False)
def deploy_staging(staging: Staging, endpoint: str = "") -> Deployment:
    """Serve the Staging version on ``endpoint``, pinned to it (see the module docstring).

    Args:
        staging: the Staging step's outcome; nothing happens unless it is in Staging.
        endpoint: the staging endpoint; empty = no staging deployment (a decision saying so).

    Returns:
        A :class:`Deployment` whose action is ``staging endpoint created``, ``staging
        endpoint switched``, ``already serving``, ``not deployed`` (not in Staging) or
        ``no staging endpoint``.

    Raises:
        InvalidInput: the endpoint tracks a stage (a staging endpoint is pinned), or the
            version fails the endpoint's smoke test (e.g. its features are not
            materialized).
        Conflict: a rollout someone started is under way on the endpoint.
    """
    candidate = staging.candidate
    model, v = candidate.model, candidate.version

    def done(action: str, reasons: list[str], where: str | None = endpoint) -> Deployment:
        return _deployment(
            staging, action, reasons, endpoint=where or None, step_name="deploy_staging"
        )

    if not endpoint:
        return done(
            "no staging endpoint",
            ["no staging endpoint was named (staging_endpoint): Staging is not served"],
        )
    if not staging.promoted:
        return done("not deployed", [f"v{v} is not in Staging: {staging.decision.action}"])
    client = milepost.Client()
    spec = endpoint_or_none(client, endpoint)
    if spec is None:
        client.create_endpoint(endpoint, model, version=v)
        return done(
            "staging endpoint created",
            [f"{model} v{v} (Staging) serves on {endpoint!r}, created pinned to v{v}"],
        )
    if spec.track is not None:
        raise InvalidInput(
            f"Endpoint {endpoint!r} tracks {spec.track}; a staging endpoint is pinned to the "
            "version in Staging, so the retraining pipeline cannot switch it.",
            hint="Name another endpoint as staging_endpoint (it is created pinned), or the "
            "tracking one as the endpoint of the policy's deploy section.",
        )
    primary, rollout = spec.primary, spec.rollout
    if (primary.model, primary.version) == (model, v):
        if rollout is not None and rollout.status in ("switched", "succeeded"):
            milepost.get_runtime().serving.finalize(endpoint)  # an earlier switch's leftover
        return done("already serving", [f"{endpoint!r} already serves {model} v{v}"])
    client.update_endpoint(endpoint, v, strategy="blue_green", model=model)
    why = f"{model} v{v} entered Staging"
    client.advance_endpoint(endpoint, reason=why)  # a blue/green preview: the switch
    milepost.get_runtime().serving.finalize(endpoint)
    return done(
        "staging endpoint switched",
        [
            f"{model} v{v} (Staging) serves on {endpoint!r} in place of "
            f"{primary.model} v{primary.version}: loaded beside it, switched, the old one "
            "retired (blue/green)"
        ],
    )


def first_deployment(staging: Staging, where: str, reason: str) -> Deployment:
    """The model's first Production version, and the endpoint that serves it.

    The candidate (in Staging) is promoted to Production through the policy's gates; if
    it enters, ``where`` is created tracking Production. Called by ``deploy_model``
    when the policy deploys automatically, ``where`` does not exist and the model has no
    Production version.
    """
    candidate = staging.candidate
    model, v = candidate.model, candidate.version
    client = milepost.Client()
    try:
        request = client.promote(model, v, "Production", reason=reason[:500])
    except GateFailed as exc:
        gates, request_id = _refused(exc)
        return _deployment(
            staging,
            "not deployed",
            ["the Production gates refused it: " + "; ".join(_failing(gates) or [exc.message])],
            endpoint=where,
            request_id=request_id,
            gates=gates,
        )
    gates = [g.to_dict() for g in request.gates]
    rid = request.request_id
    passed = "; ".join(f"{g['name']} {g['status']}: {g['message']}" for g in gates) or "none"
    if request.status == "pending_approval":
        return _deployment(
            staging,
            "pending approval",
            [
                f"{model} has no Production version and {where!r} does not exist yet: "
                f"Production request {rid[:12]} waits for an approver (`milepost promotions "
                f"approve {rid[:12]}`); the next run then creates {where!r} tracking "
                f"Production (or `milepost endpoints create {where} {model}`)",
            ],
            endpoint=where,
            request_id=rid,
            gates=gates,
        )
    if request.status == "awaiting_rollout":  # another endpoint tracks Production
        return _deployment(
            staging,
            "awaiting rollout",
            [
                f"every gate passed; endpoint {request.endpoint!r} tracks Production, so "
                f"v{v} enters it when rolled out there (request {rid[:12]})"
            ],
            endpoint=request.endpoint,
            request_id=rid,
            gates=gates,
        )
    client.create_endpoint(where, model)
    return _deployment(
        staging,
        "first Production version",
        [
            f"first Production version: v{v} serving on {where!r} (created, tracking "
            f"Production of {model})",
            f"its Production gates: {passed}",
        ],
        endpoint=where,
        request_id=rid,
        gates=gates,
    )
