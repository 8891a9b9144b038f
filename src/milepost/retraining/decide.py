"""The retraining pipeline's decisions: compare with Production, Staging, deployment.

- :func:`evaluate_model` scores the candidate and the current Production version on the
  same held-out rows with the evaluation service (both results are stored) and says
  which wins, by how much, on the policy's primary metric (its ``metric_vs_baseline``
  gate's, else ROC AUC for classes and RMSE for numbers). No Production version yet:
  there is no baseline, and it says so.
- :func:`promote_to_staging` asks for Staging; the policy's gates decide. A refusal is a
  decision ("not promoted: <gate messages>"), not a failure: the run succeeds and the
  deployment step does nothing.
- :func:`deploy_model` follows the policy's ``deploy`` section
  (:class:`milepost.promotion.DeployPolicy`): automatic deployment starts a canary on the
  endpoint that tracks Production (the rollout carries the version's promotion, so the
  Production gates run first, and a refusal means no traffic); otherwise it requests
  Production and reports the request waiting for approval. When the endpoint does not
  exist yet it is created, tracking Production: after the first Production version has
  passed its gates (see :mod:`milepost.retraining.deploy`), or at once when there is one.

:func:`milepost.retraining.deploy.deploy_staging` (the staging endpoint) runs beside
:func:`deploy_model`.
"""

from __future__ import annotations

import math
from typing import Any

import milepost
from milepost.errors import Conflict, GateFailed
from milepost.evaluation.metrics import LOWER_IS_BETTER
from milepost.pipelines import step

# at run time, not under TYPE_CHECKING: the pipeline engine reads the steps' annotations
from milepost.retraining.deploy import (
    _deployment,
    _failing,
    _gates,
    endpoint_or_none,
    first_deployment,
)
from milepost.retraining.records import Candidate, Comparison, Decision, Deployment, Staging
from milepost.retraining.steps import _metric_gate, _policy, _production

__all__ = ["deploy_model", "evaluate_model", "promote_to_staging"]


def _score(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@step(cache=False)
def evaluate_model(candidate: Candidate) -> Comparison:
    """Score the candidate and Production on the candidate's held-out rows.

    Raises:
        MilepostError: the candidate cannot be scored (a Production version that cannot
            is recorded as such instead: it is information about Production).
    """
    training = candidate.training
    gate = _metric_gate(_policy(candidate.model))
    classes = "roc_auc" in candidate.metrics
    primary = gate.primary if gate is not None else ("roc_auc" if classes else "rmse")
    sign = -1 if primary in LOWER_IS_BETTER else 1
    cand = milepost.evaluate(candidate.uri, training.holdout, target=training.target)
    c_val = _score(cand.metrics.get(primary))
    evaluations = {"candidate": cand.eval_id}
    production = _production(candidate.model)
    where = f"{training.holdout} ({training.holdout_rows:,} held-out rows)"
    shown = "n/a" if c_val is None else f"{c_val:.4f}"
    if production is None:
        return Comparison(
            candidate=candidate,
            dataset=training.holdout,
            primary=primary,
            candidate_score=c_val,
            production_version=None,
            production_score=None,
            improvement=None,
            winner="no baseline",
            evaluations=evaluations,
            decision=Decision(
                "evaluate_model",
                "no baseline",
                [
                    f"{candidate.model} has no Production version yet: nothing to compare "
                    f"with; candidate v{candidate.version} scores {primary} {shown} on {where}",
                    "the gates decide on their own (a metric gate applies its absolute threshold)",
                ],
                {"primary": primary, "candidate": c_val, "evaluations": evaluations},
            ),
        )
    try:
        base = milepost.evaluate(
            f"models:/{candidate.model}/{production}", training.holdout, target=training.target
        )
    except milepost.MilepostError as exc:
        reason = f"Production v{production} could not be scored on {where}: {exc.message}"
        return Comparison(
            candidate=candidate,
            dataset=training.holdout,
            primary=primary,
            candidate_score=c_val,
            production_version=production,
            production_score=None,
            improvement=None,
            winner="unknown",
            evaluations=evaluations,
            decision=Decision(
                "evaluate_model", "not compared", [reason], {"primary": primary, "candidate": c_val}
            ),
        )
    evaluations["production"] = base.eval_id
    b_val = _score(base.metrics.get(primary))
    gain = None if c_val is None or b_val is None else (c_val - b_val) * sign
    if gain is None:
        winner, verdict = "unknown", f"{primary} could not be computed for both"
    elif abs(gain) < 1e-12:
        winner, verdict = "tie", "a tie"
    elif gain > 0:
        winner, verdict = "candidate", f"the candidate wins by {gain:+.4f}"
    else:
        winner, verdict = "production", f"Production wins: the candidate is {gain:+.4f}"
    b_shown = "n/a" if b_val is None else f"{b_val:.4f}"
    return Comparison(
        candidate=candidate,
        dataset=training.holdout,
        primary=primary,
        candidate_score=c_val,
        production_version=production,
        production_score=b_val,
        improvement=gain,
        winner=winner,
        evaluations=evaluations,
        decision=Decision(
            "evaluate_model",
            f"{winner} better" if winner in ("candidate", "production") else winner,
            [
                f"{primary} on {where}: candidate v{candidate.version} {shown} vs Production "
                f"v{production} {b_shown}: {verdict}" + ("" if sign > 0 else " (lower is better)")
            ],
            {
                "primary": primary,
                "candidate": c_val,
                "production": b_val,
                "production_version": production,
                "improvement": gain,
                "evaluations": evaluations,
            },
        ),
    )


@step(cache=False)
def promote_to_staging(comparison: Comparison) -> Staging:
    """Ask for Staging through the policy's gates; a refusal is recorded, not raised."""
    candidate = comparison.candidate
    client = milepost.Client()
    why = f"retrained; {comparison.decision.reasons[0]}"
    try:
        request = client.promote(candidate.model, candidate.version, "Staging", reason=why[:500])
    except GateFailed as exc:
        gates = _gates(exc.details)
        request_id = exc.details.get("request_id") if isinstance(exc.details, dict) else None
        return Staging(
            candidate=candidate,
            promoted=False,
            request_id=request_id,
            gates=gates,
            decision=Decision(
                "promote_to_staging",
                "not promoted: " + "; ".join(_failing(gates) or [exc.message]),
                _failing(gates) or [exc.message],
                {"request_id": request_id, "version": candidate.version},
            ),
        )
    gates = [g.to_dict() for g in request.gates]
    promoted = request.status == "completed"
    action = (
        "in Staging"
        if promoted
        else f"waiting for approval to enter Staging (request {request.request_id[:12]})"
    )
    return Staging(
        candidate=candidate,
        promoted=promoted,
        request_id=request.request_id,
        gates=gates,
        decision=Decision(
            "promote_to_staging",
            action,
            [f"{g['name']}: {g['status']}, {g['message']}" for g in gates]
            or ["the policy has no Staging gates"],
            {"request_id": request.request_id, "status": request.status},
        ),
    )


@step(cache=False)
def deploy_model(staging: Staging, endpoint: str = "") -> Deployment:
    """Start a canary (automatic deployment) or request Production (approval).

    With automatic deployment and no endpoint of that name yet, the endpoint is made:
    a model with no Production version first asks for Production through the policy's
    gates (:func:`milepost.retraining.deploy.first_deployment`: ``first Production
    version``, ``pending approval`` or ``not deployed``); a model with one gets the
    endpoint tracking it, then the canary.

    Args:
        staging: the Staging step's outcome; nothing happens unless it is in Staging.
        endpoint: where the canary starts; empty = the policy's ``deploy.endpoint``.

    An endpoint busy with another rollout (a canary still in progress) is a decision,
    ``not deployed`` with the reason: the candidate stays in Staging, the run succeeds.

    Raises:
        InvalidInput: the endpoint cannot be created (e.g. the Production version's
            features are not materialized).
    """
    from milepost.serving import CanaryPolicy

    candidate = staging.candidate
    v = candidate.version
    if not staging.promoted:
        return _deployment(
            staging, "not deployed", [f"v{v} is not in Staging: {staging.decision.action}"]
        )
    deploy = _policy(candidate.model).deploy
    client = milepost.Client()
    if deploy.automatic:
        where = endpoint or deploy.endpoint or ""
        created: list[str] = []
        if where and endpoint_or_none(client, where) is None:
            production = _production(candidate.model)
            if production is None:
                return first_deployment(staging, where, "retrained; " + staging.decision.action)
            client.create_endpoint(where, candidate.model)
            created = [
                f"{where!r} did not exist: created, tracking Production of "
                f"{candidate.model} (v{production})"
            ]
        settings = CanaryPolicy(**deploy.canary_settings())
        try:
            spec = client.update_endpoint(where, v, strategy="canary", policy=settings)
        except GateFailed as exc:
            gates = _gates(exc.details)
            request_id = exc.details.get("request_id") if isinstance(exc.details, dict) else None
            return _deployment(
                staging,
                "not deployed",
                [*created, "the Production gates refused it: " + "; ".join(_failing(gates))],
                endpoint=where,
                request_id=request_id,
                gates=gates,
            )
        except Conflict as exc:
            request_id = exc.details.get("request_id") if isinstance(exc.details, dict) else None
            if request_id is None:  # the endpoint is busy (a rollout in progress): a decision
                return _deployment(
                    staging,
                    "not deployed",
                    [
                        f"the endpoint {where!r} refused a new rollout: {exc.message}",
                        f"v{v} stays in Staging; a later release (or `milepost endpoints "
                        f"update {where} {v}`) deploys it once the rollout in progress ends",
                    ],
                    endpoint=where,
                )
            request = client.get_promotion_request(request_id)
            return _deployment(
                staging,
                "pending approval",
                [
                    *created,
                    f"the canary on {where!r} waits for its promotion request "
                    f"{request_id[:12]} to be approved (`milepost promotions approve "
                    f"{request_id[:12]}`), then starts again",
                ],
                endpoint=where,
                request_id=request_id,
                gates=[g.to_dict() for g in request.gates],
            )
        rollout = spec.rollout
        request_id = rollout.request_id if rollout is not None else None
        started = client.get_promotion_request(request_id) if request_id else None
        return _deployment(
            staging,
            "canary started",
            [
                *created,
                f"the policy allows automatic deployment: canary of v{v} on {where!r}, "
                f"{deploy.describe().split(': ', 1)[1]}",
                "its Production gates passed before any traffic: "
                + ", ".join(f"{g.name} {g.status}" for g in (started.gates if started else [])),
            ],
            endpoint=where,
            request_id=request_id,
            gates=[g.to_dict() for g in started.gates] if started else [],
        )
    try:
        request = client.promote(
            candidate.model, v, "Production", reason="retrained; " + staging.decision.action
        )
    except GateFailed as exc:
        gates = _gates(exc.details)
        request_id = exc.details.get("request_id") if isinstance(exc.details, dict) else None
        return _deployment(
            staging,
            "not deployed",
            ["the Production gates refused it: " + "; ".join(_failing(gates))],
            request_id=request_id,
            gates=gates,
        )
    gates = [g.to_dict() for g in request.gates]
    rid = request.request_id
    if request.status == "pending_approval":
        action, why = (
            "pending approval",
            (
                f"automatic deployment is off: Production request {rid[:12]} waits for an "
                f"approver (`milepost promotions approve {rid[:12]}`)"
            ),
        )
    elif request.status == "awaiting_rollout":
        action, why = (
            "awaiting rollout",
            (
                f"every gate passed; endpoint {request.endpoint!r} tracks Production, so v{v} "
                f"enters it when rolled out there (request {rid[:12]})"
            ),
        )
    else:
        action, why = "in production", f"every gate passed: v{v} is Production"
    return _deployment(
        staging, action, [why], endpoint=request.endpoint, request_id=rid, gates=gates
    )
