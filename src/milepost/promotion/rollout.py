"""Promotion requests carried by a rollout on an endpoint that tracks the target stage.

The serving service calls these; each ``*_in`` method runs inside the transaction that
changes the endpoint's spec (the model's row is locked first), so the request's status,
the registry's stages and the endpoint's variants change together or not at all:

- :meth:`RolloutRequests.request_for` finds the approved request a rollout may carry
  (``awaiting_rollout``), or starts the promotion so that its gates run before the
  version takes any traffic;
- :meth:`RolloutRequests.claim_in`: the rollout starts (``rolling_out``);
- :meth:`RolloutRequests.complete_in`: the rollout ends well: the version enters the
  stage (the previous one is archived), the rollout's verdict is recorded as a gate
  (``completed``);
- :meth:`RolloutRequests.abort_in`: the rollout is rolled back before it completed; the
  registry never changed (``rolled_back``, the verdict recorded as a failed gate);
- :meth:`RolloutRequests.revert_in`: a completed rollout is rolled back; the previous
  version returns to Production and the rolled-back one is archived (``rolled_back``).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from milepost.errors import Conflict
from milepost.promotion.gates import GateResult

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.promotion.models import PromotionRequest
    from milepost.promotion.service import PromotionService

__all__ = ["ROLLOUT_GATE", "RolloutRequests"]

#: the kind of the gate result a rollout records on the request it carries
ROLLOUT_GATE = "rollout"


def _now() -> int:
    return int(time.time() * 1000)


class RolloutRequests:
    """The rollout side of promotion requests (see the module docstring)."""

    def __init__(self, promotion: PromotionService) -> None:
        self.promotion = promotion

    @property
    def _actor(self) -> str:
        return self.promotion.actor

    def verdict(self, endpoint: str, how: str, passed: bool, message: str) -> GateResult:
        """The gate result a rollout records: ``canary on churn: passed, <why>``."""
        return GateResult(
            f"{how} on {endpoint}",
            ROLLOUT_GATE,
            "passed" if passed else "failed",
            message,
            {"endpoint": endpoint, "strategy": how},
            self._actor,
            _now(),
        )

    def request_for(
        self, name: str, version: int, endpoint: str, *, reason: str | None = None
    ) -> PromotionRequest:
        """The request that lets ``version`` into Production through ``endpoint``.

        An approved request waiting for this endpoint (``awaiting_rollout``) is used. One
        whose gates compared with a Production version that has changed since, or one
        (also waiting for approval) whose policy has gained gates on its path since, is
        marked stale. Without one, the promotion starts now: its gates (Staging's too, on the
        way from None) run before the version takes any traffic.

        Raises:
            GateFailed: the gates refused the version (recorded; nothing is deployed).
            Conflict: the request waits for an approval (it is named; approve it, then
                start the rollout again), or the move is illegal (an archived version is
                re-reviewed in Staging first).
        """
        svc = self.promotion
        production = svc.models.get_model(name).production_version
        for req in svc.list_requests(status="awaiting_rollout", model=name, version=version):
            if req.target_stage != "Production":
                continue
            if req.baseline_version == production and req.endpoint == endpoint:
                if not svc.missing_gates(req):
                    return req
                # the policy gained gates since: this request never passed them
                with contextlib.suppress(Conflict):
                    svc.refuse_if_policy_grew(req)
                continue
            svc._mark_stale(
                req.request_id,
                name,
                version,
                f"Production is v{production} now, not v{req.baseline_version} as when its "
                "gates ran",
            )
        waiting = []
        for r in svc.list_requests(status="pending_approval", model=name, version=version):
            if r.target_stage != "Production":
                continue
            if svc.missing_gates(r):
                with contextlib.suppress(Conflict):
                    svc.refuse_if_policy_grew(r)
                continue
            waiting.append(r)
        req = waiting[0] if waiting else svc.promote(name, version, "Production", reason=reason)
        if req.status == "pending_approval":
            raise Conflict(
                f"{name} v{version} may take traffic on {endpoint!r} only once its promotion "
                f"to Production is approved: request {req.request_id[:12]} waits for approval.",
                hint=f"An approver runs `milepost promotions approve {req.request_id[:12]}`; then "
                "start the rollout again.",
                details={"request_id": req.request_id},
            )
        if req.status != "awaiting_rollout" or req.endpoint != endpoint:
            raise Conflict(
                f"The promotion of {name} v{version} (request {req.request_id[:12]}) is "
                f"{req.status}, not waiting for a rollout on {endpoint!r}.",
                hint=f"See `milepost endpoints show {endpoint}` and `milepost promotions list "
                f"--model {name} --status all`.",
            )
        return req

    def claim_in(self, conn: Connection, request_id: str, endpoint: str) -> None:
        """A rollout starts carrying the request (``awaiting_rollout -> rolling_out``).

        Raises:
            Conflict: the request is not waiting for this endpoint any more, or
                Production moved since its gates ran.
        """
        svc = self.promotion
        req = svc.store.get(request_id, conn)
        name, version = req.model, req.version
        if req.status != "awaiting_rollout" or req.endpoint != endpoint:
            raise Conflict(
                f"Request {request_id[:12]} is {req.status}, not waiting for a rollout on "
                f"{endpoint!r}.",
                hint="Start the rollout again.",
            )
        svc.models.store.check_transition_in(
            conn,
            name,
            version,
            req.target_stage,
            expected_production=req.baseline_version,
        )
        svc.store.update(conn, request_id, status="rolling_out")
        svc._audit(
            conn,
            "promotion.rolling_out",
            name,
            version,
            request_id,
            "rolling_out",
            None,
            f"rolled out on {endpoint}",
        )

    def complete_in(
        self, conn: Connection, request_id: str, endpoint: str, verdict: GateResult
    ) -> list[tuple[int, str, str]]:
        """The rollout ends well: the version enters the stage now, in ``conn``.

        Returns the stage changes made. Raises Conflict when the request is not being
        rolled out or the registry moved (nothing is written then).
        """
        from milepost.promotion.service import _summary

        svc = self.promotion
        req = svc.store.get(request_id, conn)
        self._rolling(req)
        results = [*req.gates, verdict]
        svc.store.add_gate(conn, request_id, len(req.gates), verdict)
        changes = svc.models.store.transition_in(
            conn,
            req.model,
            req.version,
            req.target_stage,
            actor=self._actor,
            reason=req.reason,
            request_id=request_id,
            expected_production=req.baseline_version,
            details=_summary(results),
            endpoint=endpoint,
        )
        svc.store.update(conn, request_id, status="completed")
        return changes

    def abort_in(self, conn: Connection, request_id: str, verdict: GateResult) -> None:
        """The rollout was rolled back before it completed: the registry never changed."""
        svc = self.promotion
        req = svc.store.get(request_id, conn)
        self._rolling(req)
        svc.store.add_gate(conn, request_id, len(req.gates), verdict)
        svc.store.update(conn, request_id, status="rolled_back")
        svc._audit(
            conn,
            "promotion.rolled_back",
            req.model,
            req.version,
            request_id,
            "rolled_back",
            [*req.gates, verdict],
            verdict.message,
        )

    def revert_in(
        self,
        conn: Connection,
        request_id: str,
        endpoint: str,
        *,
        previous: int,
        reason: str,
    ) -> list[tuple[int, str, str]]:
        """A completed rollout is rolled back: the previous Production version returns to
        Production and the request's version is archived, in ``conn``.

        Raises:
            Conflict: the request did not complete, or the registry moved since (the
                message says what to do instead).
        """
        svc = self.promotion
        req = svc.store.get(request_id, conn)
        name, version = req.model, req.version
        if req.status != "completed":
            raise Conflict(
                f"Request {request_id[:12]} is {req.status}: there is no completed rollout "
                "of it to roll back."
            )
        changes = svc.models.store.restore_in(
            conn,
            name,
            current=version,
            previous=previous,
            actor=self._actor,
            reason=reason,
            request_id=request_id,
            endpoint=endpoint,
        )
        results = list(req.gates)
        position = next(
            (i for i in range(len(results) - 1, -1, -1) if results[i].kind == ROLLOUT_GATE),
            None,
        )
        how = results[position].details.get("strategy", "rollout") if position is not None else ""
        verdict = self.verdict(
            endpoint, how or "rollout", False, f"rolled back after it completed: {reason}"
        )
        if position is None:
            svc.store.add_gate(conn, request_id, len(results), verdict)
            results.append(verdict)
        else:
            svc.store.update_gate(conn, request_id, position, verdict)
            results[position] = verdict
        svc.store.update(conn, request_id, status="rolled_back")
        svc._audit(
            conn,
            "promotion.rolled_back",
            name,
            version,
            request_id,
            "rolled_back",
            results,
            reason,
        )
        return changes

    @staticmethod
    def _rolling(req: PromotionRequest) -> None:
        if req.status != "rolling_out":
            raise Conflict(f"Request {req.request_id[:12]} is {req.status}, not being rolled out.")
