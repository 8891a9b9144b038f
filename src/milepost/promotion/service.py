"""The promotion workflow: run a model's gates, record every result, then transition or refuse.

``promote`` evaluates the automated gates for the target stage. Any failure refuses the
promotion (the request and every gate result are stored; the registry is unchanged) and
raises :class:`~milepost.errors.GateFailed` listing the failing gates; an approval gate of
a refused request is recorded as ``skipped`` (nobody is asked). If an approval gate
remains, the request waits (``pending_approval``); ``approve`` by people with the
required role completes it, ``reject`` ends it. The stage change and the request's
completion commit in one transaction, and only if Production is still the version the
gates compared against — so of two racing promotions exactly one wins.

Stages are a path: a version entering Production from None also passes the policy's
Staging gates (both sets are recorded on the request), unless the policy sets
``allow_direct_production``.

When an endpoint tracks Production of the model, a request whose gates all passed does
not change the stage by itself: it is ``awaiting_rollout`` on that endpoint. A rollout
there (canary, blue/green, rolling) claims it (``rolling_out``) before the version takes
traffic; the rollout's end makes the version Production and the endpoint's primary in one
transaction (``completed``, with the rollout's verdict recorded as a gate), and a rollout
rolled back — before or after it completed — ends it ``rolled_back``. Request statuses:

=====================  ===============================================================
``pending_approval``   automated gates passed; waits for approvals
``awaiting_rollout``   every gate passed; enters Production when the endpoint rolls it out
``rolling_out``        a rollout on the tracking endpoint carries it
``completed``          the version entered the stage
``rolled_back``        the rollout was rolled back; Production is (again) the previous one
``refused``            an automated gate failed
``rejected``           an approver rejected it
``stale``              Production changed after its gates ran, or the policy gained
                       gates on its path; promote again
=====================  ===============================================================
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import Conflict, GateFailed, InvalidInput, PermissionDenied
from milepost.models.models import transition_problem
from milepost.models.uri import check_model_name
from milepost.promotion.backends.sql import SqlPromotionStore
from milepost.promotion.gates import Approval, Gate, GateContext, GateResult, run_gate
from milepost.promotion.models import PromotionRequest
from milepost.promotion.policy import DeployPolicy, PromotionPolicy
from milepost.promotion.rollout import RolloutRequests
from milepost.stores.audit import append_event

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Connection

    from milepost.config import Settings
    from milepost.data.service import DataService
    from milepost.evaluation.service import EvaluationService
    from milepost.governance.roles import RoleService
    from milepost.models.service import ModelService
    from milepost.stores.metadata import MetadataStore

__all__ = ["OPEN_STATUSES", "PromotionRequest", "PromotionService"]

_STAGE_NAMES = {"staging": "Staging", "production": "Production"}
#: statuses of a request that is still open (an approval or a rollout may follow)
OPEN_STATUSES = ("pending_approval", "awaiting_rollout", "rolling_out")

_REQUEST_ID = re.compile(r"[0-9a-f]{4,32}")


def _request_id(request_id: object) -> str:
    """A promotion request's id, or a prefix of at least 4 of its hex digits."""
    if isinstance(request_id, str):
        request_id = request_id.strip().lower()
    return check.name(
        request_id,
        "Promotion request id",
        max_length=32,
        pattern=_REQUEST_ID,
        rule="give the hex id, or at least its first 4 characters, as "
        "`milepost promotions list` prints it",
    )


def _now() -> int:
    return int(time.time() * 1000)


class PromotionService:
    """Policies, promotions, approvals."""

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        settings: Settings,
        *,
        models: ModelService,
        evaluation: EvaluationService,
        data: DataService,
        roles: RoleService,
    ) -> None:
        self.db = db
        self.store = SqlPromotionStore(db)
        self.models = models
        self.evaluation = evaluation
        self.data = data
        self.roles = roles
        self.actor = settings.actor()
        #: the requests rollouts on tracking endpoints carry (used by the serving service)
        self.rollouts = RolloutRequests(self)

    # -- policy -----------------------------------------------------------------------

    def set_policy(
        self, name: str, policy: PromotionPolicy | dict[str, Any] | str | Path | None
    ) -> PromotionPolicy:
        """Set (or with None, clear) a model's promotion policy, audited.

        A model that does not exist yet is created (with no versions, audited like any
        model's creation, in the same transaction), so an approver can put a project's
        policy in place before its first training run registers a version.

        Args:
            name: the registered model.
            policy: a PromotionPolicy, a mapping, YAML text, a path to a YAML file, or
                None to clear it.

        Raises:
            InvalidInput: the policy is malformed; the message names the section, the gate's
                index and kind, and the field (NaN, infinities and wrong types are refused
                here, never at promotion time). Nothing is stored, and no model is created.
            NotFound: clearing the policy of a model that does not exist.
        """
        check_model_name(name)
        if policy is None:
            self.models.store.set_policy(name, None, actor=self.actor)
            return PromotionPolicy()
        if isinstance(policy, PromotionPolicy):
            policy = _revalidated(policy)
        elif isinstance(policy, dict):
            policy = PromotionPolicy.from_dict(policy)
        else:
            policy = PromotionPolicy.from_yaml(policy)
        # allow_nan=False: what is stored is exactly what get_policy parses back
        text = json.dumps(policy.to_dict(), allow_nan=False)
        self.models.store.set_policy(name, text, actor=self.actor)
        return policy

    def get_policy(self, name: str) -> PromotionPolicy:
        """A model's policy (empty when none is set)."""
        check_model_name(name)
        return _stored_policy(name, self.models.store.policy(name))

    # -- promote ----------------------------------------------------------------------

    def promote(
        self, name: str, version: int, to: str, *, reason: str | None = None
    ) -> PromotionRequest:
        """Run the gates for ``to`` and transition, wait for approval, or refuse.

        Raises:
            GateFailed: an automated gate failed (the message lists each one).
            Conflict: the transition is illegal, or Production changed meanwhile.
        """
        check_model_name(name)
        check.integer(version, "Model version", minimum=1)
        check.name(to, "Target stage", max_length=32)
        reason = check.optional_text(reason, "reason")
        target = _STAGE_NAMES.get(to.lower())
        if target is None:
            raise InvalidInput(
                f"Cannot promote to {to!r}: promotions go to Staging or Production.",
                hint="Use `milepost models archive` to archive a version.",
            )
        model_id, raw_policy, candidate, production = self.models.promotion_snapshot(name, version)
        problem = transition_problem(candidate.stage, target)
        if problem:
            raise Conflict(f"Cannot promote {name} version {version} to {target}: {problem}.")
        policy = _stored_policy(name, raw_policy)
        ctx = GateContext(
            name,
            candidate,
            target,
            production,
            self.actor,
            self.evaluation.evaluate,
            self.data,
            self.roles,
            self.evaluation.audit_fairness,
        )
        results = []
        for stage, gate in policy.gates_on_path(candidate.stage, target):
            r = run_gate(gate, ctx)
            label = r.name if stage == target else f"{r.name} ({stage})"
            results.append(
                GateResult(label, r.kind, r.status, r.message, r.details, self.actor, r.at)
            )
        request_id = uuid.uuid4().hex
        baseline = production.version if production else None
        values: dict[str, Any] = {
            "request_id": request_id,
            "model_id": model_id,
            "version_id": candidate.version_id,
            "target_stage": target,
            "baseline_version": baseline,
            "requested_by": self.actor,
            "reason": reason,
            "created_at": _now(),
        }
        failing = [r for r in results if r.status in ("failed", "error")]
        if failing:
            results = [_skipped(r, failing) if r.status == "pending" else r for r in results]
            with self.db.write() as conn:
                self.store.insert(conn, {**values, "status": "refused"}, results)
                self._audit(
                    conn,
                    "promotion.refused",
                    name,
                    version,
                    request_id,
                    "refused",
                    results,
                    reason,
                    target=target,
                    approvers=[],
                )
            raise GateFailed(
                f"Promotion of {name} v{version} to {target} refused: "
                + "; ".join(f"{r.name}: {r.message}" for r in failing)
                + ".",
                hint=f"Request {request_id[:12]} records every gate; the registry is unchanged.",
                details={"request_id": request_id, "gates": [r.to_dict() for r in results]},
            )
        if any(r.status == "pending" for r in results):
            with self.db.write() as conn:
                self.store.insert(conn, {**values, "status": "pending_approval"}, results)
                self._audit(
                    conn,
                    "promotion.requested",
                    name,
                    version,
                    request_id,
                    "pending_approval",
                    results,
                    reason,
                    target=target,
                    approvers=[],
                )
            return self.get_request(request_id)

        decided_at = _now()
        with self.db.write() as conn:
            endpoint = self._enter(
                conn, name, version, target, request_id, baseline, reason, results
            )
            status = "completed" if endpoint is None else "awaiting_rollout"
            self.store.insert(
                conn,
                {
                    **values,
                    "status": status,
                    "decided_by": self.actor,
                    "decided_at": decided_at,
                    "endpoint": endpoint,
                },
                results,
            )
            if endpoint is not None:
                self._audit(
                    conn,
                    "promotion.awaiting_rollout",
                    name,
                    version,
                    request_id,
                    status,
                    results,
                    reason,
                    target=target,
                    approvers=[],
                )
        # built from what was just committed rather than read back (promotion is hot in CI)
        return PromotionRequest(
            request_id=request_id,
            model=name,
            version=version,
            target_stage=target,
            status=status,
            requested_by=self.actor,
            reason=reason,
            created_at=values["created_at"],
            baseline_version=baseline,
            decided_by=self.actor,
            decided_at=decided_at,
            gates=results,
            endpoint=endpoint,
        )

    def _enter(
        self,
        conn: Connection,
        name: str,
        version: int,
        target: str,
        request_id: str,
        baseline: int | None,
        reason: str | None,
        results: list[GateResult],
    ) -> str | None:
        """Every gate passed: change the stage now (returns None) or, when an endpoint
        tracks the target stage, check the move and leave it to that endpoint's rollout
        (returns the endpoint's name). Runs under the model's lock, inside ``conn``."""
        registry = self.models.store
        registry.lock_model(conn, name)
        bound = registry.tracking_endpoint(conn, name, target)
        if bound is None:
            registry.transition_in(
                conn,
                name,
                version,
                target,
                actor=self.actor,
                reason=reason,
                request_id=request_id,
                expected_production=baseline,
                details=_summary(results),
            )
            return None
        registry.check_transition_in(conn, name, version, target, expected_production=baseline)
        return bound[0]

    def _audit(
        self,
        conn: Connection,
        action: str,
        name: str,
        version: int,
        request_id: str,
        status: str,
        results: list[GateResult] | None,
        reason: str | None,
        *,
        target: str | None = None,
        approvers: list[str] | None = None,
    ) -> None:
        """Record a request's new state: ``audit verify`` checks the tables against it."""
        after: dict[str, Any] = {"request_id": request_id, "status": status}
        if target is not None:
            after["target_stage"] = target
        if results is not None:
            after["gates"] = _summary(results)
        if approvers is not None:
            after["approvals"] = len(approvers)
            after["approvers"] = approvers
        append_event(
            conn,
            actor=self.actor,
            action=action,
            object_type="model_version",
            object_id=f"{name}/{version}",
            after=after,
            reason=reason,
        )

    # -- approve / reject ---------------------------------------------------------------

    def _pending(self, request_id: str) -> PromotionRequest:
        request_id = _request_id(request_id)
        if len(request_id) < 32:
            request_id = self.store.find(request_id)
        req = self.store.get(request_id)
        if req.status != "pending_approval":
            raise Conflict(f"Request {request_id[:12]} is {req.status}, not awaiting approval.")
        return req

    def approve(self, request_id: str, *, reason: str | None = None) -> PromotionRequest:
        """Approve a waiting request; with every gate passed, the transition happens now.

        Raises:
            PermissionDenied: the actor lacks the gate's role, or approves their own request.
            Conflict: not awaiting approval, already approved by this actor, or Production
                changed since the gates ran (the request is then marked stale).
        """
        reason = check.optional_text(reason, "reason")
        req = self._pending(request_id)
        self.refuse_if_policy_grew(req)
        request_id, gates = req.request_id, req.gates
        position, gate = next(
            ((i, g) for i, g in enumerate(gates) if g.kind == "approval" and g.status == "pending"),
            (None, None),
        )
        if gate is None or position is None:  # pragma: no cover - pending implies one
            raise Conflict(f"Request {request_id[:12]} has no approval waiting.")
        details = gate.details
        spec = _approval_spec(details, request_id)
        self._check_approver(req, spec)
        approvals = list(details.get("approvals", []))
        if any(a["actor"] == self.actor for a in approvals):
            raise Conflict(f"{self.actor!r} has already approved request {request_id[:12]}.")
        approvals.append({"actor": self.actor, "at": _now(), "reason": reason})
        needed = int(spec["count"])
        done = len(approvals) >= needed
        updated = GateResult(
            gate.name,
            "approval",
            "passed" if done else "pending",
            ("approved by " if done else f"{len(approvals)}/{needed} approvals: ")
            + ", ".join(a["actor"] for a in approvals),
            {**details, "approvals": approvals},
            self.actor,
            _now(),
        )
        still_pending = [g for i, g in enumerate(gates) if i != position and not g.passed]
        name, version = req.model, req.version
        results = list(gates)
        results[position] = updated
        approvers = [str(a["actor"]) for a in approvals]
        if not done or still_pending:
            with self.db.write() as conn:
                self.store.update_gate(conn, request_id, position, updated)
                self._audit(
                    conn,
                    "promotion.approved",
                    name,
                    version,
                    request_id,
                    "pending_approval",
                    results,
                    reason,
                    approvers=approvers,
                )
            return self.get_request(request_id)

        try:
            with self.db.write() as conn:
                endpoint = self._enter(
                    conn,
                    name,
                    version,
                    req.target_stage,
                    request_id,
                    req.baseline_version,
                    req.reason,
                    results,
                )
                status = "completed" if endpoint is None else "awaiting_rollout"
                self.store.update_gate(conn, request_id, position, updated)
                self.store.update(
                    conn,
                    request_id,
                    status=status,
                    decided_by=self.actor,
                    decided_at=_now(),
                    decision_reason=reason,
                    endpoint=endpoint,
                )
                self._audit(
                    conn,
                    "promotion.approved",
                    name,
                    version,
                    request_id,
                    status,
                    results,
                    reason,
                    approvers=approvers,
                )
        except Conflict:
            self._mark_stale(request_id, name, version, "stage changed meanwhile")
            raise
        return self.get_request(request_id)

    def missing_gates(self, req: PromotionRequest) -> list[str]:
        """The gates the model's policy now puts on an open request's path that the request
        did not run (a gate added after it was decided, e.g. a fairness gate)."""
        policy = self.get_policy(req.model)
        stage = self.models.get_version(req.model, req.version).stage
        ran = {(g.name, g.kind) for g in req.gates}
        missing = []
        for on, gate in policy.gates_on_path(stage, req.target_stage):
            label = gate.label() if on == req.target_stage else f"{gate.label()} ({on})"
            if (label, gate.kind) not in ran:
                missing.append(label)
        return missing

    def refuse_if_policy_grew(self, req: PromotionRequest) -> None:
        """Mark an open request stale, and refuse it, when the policy has gained gates on
        its path since its gates ran: it would enter the stage past gates it never passed.

        Raises:
            Conflict: the request is stale now; promote again (the new gates run).
        """
        missing = self.missing_gates(req)
        if not missing:
            return
        why = "the promotion policy now also requires " + ", ".join(missing)
        self._mark_stale(req.request_id, req.model, req.version, why)
        raise Conflict(
            f"Request {req.request_id[:12]} is stale: {why}, which it never passed.",
            hint=f"Promote again so that every gate runs: `milepost models promote {req.model} "
            f"{req.version} --to {req.target_stage}`.",
        )

    def _mark_stale(self, request_id: str, name: str, version: int, why: str) -> None:
        with self.db.write() as conn:
            self.store.update(
                conn,
                request_id,
                status="stale",
                decided_by=self.actor,
                decided_at=_now(),
                decision_reason=why,
            )
            self._audit(conn, "promotion.stale", name, version, request_id, "stale", None, why)

    def reject(self, request_id: str, *, reason: str | None = None) -> PromotionRequest:
        """Reject a waiting request (needs the approval gate's role)."""
        reason = check.optional_text(reason, "reason")
        req = self._pending(request_id)
        request_id, gates = req.request_id, req.gates
        position = next(
            i for i, g in enumerate(gates) if g.kind == "approval" and g.status == "pending"
        )
        details = gates[position].details
        try:
            spec = _approval_spec(details, request_id)
        except Conflict:  # a broken spec can still be rejected, by the default role
            spec = Approval().model_dump()
        self._check_approver(req, spec, rejecting=True)
        results = list(gates)
        results[position] = result = GateResult(
            gates[position].name,
            "approval",
            "failed",
            f"rejected by {self.actor}" + (f": {reason}" if reason else ""),
            details,
            self.actor,
            _now(),
        )
        with self.db.write() as conn:
            self.store.update_gate(conn, request_id, position, result)
            self.store.update(
                conn,
                request_id,
                status="rejected",
                decided_by=self.actor,
                decided_at=_now(),
                decision_reason=reason,
            )
            self._audit(
                conn,
                "promotion.rejected",
                req.model,
                req.version,
                request_id,
                "rejected",
                results,
                reason,
                approvers=[str(a["actor"]) for a in details.get("approvals", [])],
            )
        return self.get_request(request_id)

    def _check_approver(
        self, req: PromotionRequest, spec: dict[str, Any], *, rejecting: bool = False
    ) -> None:
        role = spec.get("role", "approver")
        if not self.roles.has(self.actor, role):
            holders = self.roles.holders(role)
            raise PermissionDenied(
                f"{self.actor!r} cannot {'reject' if rejecting else 'approve'} this request: it "
                f"needs the {role!r} role.",
                hint=("Ask " + ", ".join(holders[:3]))
                if holders
                else f"Nobody holds it yet: `milepost roles grant USER {role}`.",
            )
        if not rejecting and req.requested_by == self.actor and not spec.get("allow_self_approval"):
            raise PermissionDenied(
                f"{self.actor!r} requested this promotion and cannot approve it too.",
                hint="Another approver must decide (or set allow_self_approval in the policy).",
            )

    # -- reading ----------------------------------------------------------------------

    def get_request(self, request_id: str) -> PromotionRequest:
        """A request with its gate results."""
        request_id = _request_id(request_id)
        if len(request_id) < 32:
            request_id = self.store.find(request_id)
        return self.store.get(request_id)

    def list_requests(
        self,
        *,
        status: str | tuple[str, ...] | None = None,
        model: str | None = None,
        version: int | None = None,
    ) -> list[PromotionRequest]:
        """Requests, newest first (``status="pending_approval"`` for the approval queue,
        :data:`OPEN_STATUSES` for everything still waiting on someone or a rollout)."""
        if isinstance(status, str):
            check.name(status, "Request status", max_length=32)
        elif status is not None:
            check.string_list(status, "Request statuses")
        if model is not None:
            check_model_name(model)
        if version is not None:
            check.integer(version, "version", minimum=1)
        return [
            self.get_request(i)
            for i in self.store.list(status=status, model=model, version=version)
        ]


def _approval_spec(details: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The approval gate a request waits on, checked as strictly as in a policy.

    The spec is read back from the database: one changed there (a count of "2", a flag
    of "no") refuses the decision instead of being coerced into a different rule.
    """
    try:
        return Approval.model_validate(details.get("spec", {})).model_dump()
    except (InvalidInput, ValidationError) as exc:
        raise Conflict(
            f"The approval gate stored with request {request_id[:12]} is invalid "
            f"({getattr(exc, 'message', exc)}); it cannot be decided.",
            hint="Someone with the approver role can reject it; then request again.",
        ) from exc


def _stored_policy(name: str, raw: str | None) -> PromotionPolicy:
    """The policy stored for a model, checked as strictly as when it is set.

    A stored policy that no longer passes (written by hand, or by an older Milepost that
    let NaN through) refuses every promotion until it is set again: it fails closed.
    """
    if not raw:
        return PromotionPolicy()
    try:
        return PromotionPolicy.from_dict(json.loads(raw))
    except (InvalidInput, ValueError, RecursionError) as exc:
        problem = exc.message if isinstance(exc, InvalidInput) else f"not JSON ({exc})"
        raise InvalidInput(
            f"The stored promotion policy of {name} is invalid: {problem}",
            hint=f"Set it again: `milepost models policy {name} --set POLICY.yaml` "
            "(promotions of this model are refused until then).",
        ) from exc


def _revalidated(policy: PromotionPolicy) -> PromotionPolicy:
    """Check a policy built in Python as strictly as one parsed from YAML."""
    for stage in ("staging", "production"):
        gates = getattr(policy, stage)
        if not isinstance(gates, list) or not all(isinstance(g, Gate) for g in gates):
            raise InvalidInput(
                f"PromotionPolicy.{stage} must be a list of gates, got {gates!r:.80}."
            )
    # python mode: a NaN in a gate built with model_construct reaches validation as NaN
    return PromotionPolicy.from_dict(
        {
            **{
                stage: [g.model_dump(exclude_none=True) for g in getattr(policy, stage)]
                for stage in ("staging", "production")
            },
            "allow_direct_production": policy.allow_direct_production,
            "deploy": policy.deploy.model_dump(exclude_none=True)
            if isinstance(policy.deploy, DeployPolicy)
            else policy.deploy,
        }
    )


def _skipped(result: GateResult, failing: list[GateResult]) -> GateResult:
    """A gate that would wait for a person, on a request the automated gates refused."""
    return GateResult(
        result.name,
        result.kind,
        "skipped",
        "not asked: the request was refused by " + ", ".join(f.name for f in failing),
        result.details,
        result.evaluated_by,
        result.at,
    )


def _summary(results: list[GateResult]) -> list[dict[str, str]]:
    return [{"gate": r.name, "status": r.status, "message": r.message} for r in results]
