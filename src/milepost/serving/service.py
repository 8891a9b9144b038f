"""Deployments: endpoints, strategies and the rollout controller's decisions.

Every change is one audited update of the endpoint's spec (its revision grows) plus a
deployment event; replicas pick it up within a second. Strategies:

- **blue/green**: ``blue_green`` loads the new version beside the old with no traffic
  (after a readiness and smoke check), ``switch`` moves all traffic at once and keeps
  the old one warm, ``rollback`` switches back instantly, ``finalize`` retires the old.
- **canary**: ``canary`` sends a first step of traffic (sticky per key); the controller
  (:meth:`DeploymentService.tick`, run by ``milepost endpoints serve``) compares canary and primary
  on error rate and p99 latency (and optionally prediction PSI) once a step has both
  its minimum duration and request count — too little traffic is "hold" — and then
  advances, promotes at the last step, or rolls back, recording why.
- **shadow**: ``shadow`` mirrors a share of requests to a version whose answers are only
  logged; ``status`` reports agreement, latency and errors; ``promote`` turns it into a
  canary.
- **rolling**: ``rolling`` has each host's supervisor replace replicas one at a time
  (the new one takes traffic only once ready, then the old one drains); a replica that
  fails to become ready aborts the rollout and restores the previous version.

The version a rollout replaces stays loaded (standby) until ``finalize``, so
``rollback`` is a routing change: instant.

**Endpoints that track a stage.** ``create`` makes an endpoint that tracks Production of
a model (the default) or, given a version, one pinned to explicit versions (today's
behaviour, no registry involved). A tracking endpoint puts in front of traffic only what
the registry allows in Production:

- a rollout (``canary``, ``blue_green``, ``rolling``, or ``promote`` of a shadow into a
  canary) carries a promotion request for its version: an approved one waiting for this
  endpoint, or one started right there, whose gates run before any traffic (a refusal
  raises ``GateFailed``, a pending approval ``Conflict`` naming the request, an archived
  version ``Conflict``: it is re-reviewed in Staging first);
- the rollout's end (the canary's last step, ``switch``, ``complete_rolling``) makes the
  version Production in the registry (archiving the previous one) and primary on the
  endpoint in ONE transaction, audited, with the rollout's verdict recorded on the request;
- a rollout rolled back before it completed (by hand or by the controller) leaves the
  registry as it was and records the request ``rolled_back`` with the reason; ``rollback``
  after it completed returns both the registry and the endpoint to the previous version,
  together (``Conflict`` saying why not, when the registry moved);
- meanwhile the registry refuses any other change of Production for that model (see
  :mod:`milepost.models.backends.sql`), so at every committed instant the endpoint's
  primary is the registry's Production version and at most one version is Production.

Shadows answer nobody, so any version of the tracked model may be mirrored.

**Consequential endpoints** (``consequential=True`` at ``create``, or
:meth:`DeploymentService.set_consequential`) record every decision with its explanation
(:mod:`milepost.serving.decisions`): marking one checks that each variant that answers
can be explained (its SHAP explainer is built and run on the input example), and so
does every version a rollout brings in later; a model that cannot be explained is
refused. :meth:`DeploymentService.decision` reads a decision back by request id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import Conflict, InvalidInput, NotFound
from milepost.monitoring import VariantStats, variant_stats
from milepost.serving import _rollouts as rollouts
from milepost.serving._registry import RegistryLink
from milepost.serving._status import endpoint_status
from milepost.serving._variants import check_create, checked_variant, explained_for
from milepost.serving._variants import endpoint_name as _endpoint
from milepost.serving._variants import target as _target
from milepost.serving.analysis import Decision, tick
from milepost.serving.backends.sql import SqlServingStore
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout, Variant

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from milepost.config import Settings
    from milepost.features.service import FeatureService
    from milepost.models.service import ModelService
    from milepost.promotion.service import PromotionService
    from milepost.serving.decisions import DecisionRecord, PruneReport
    from milepost.stores.metadata import MetadataStore

__all__ = ["Decision", "DeploymentService", "VariantStats"]


_now = rollouts.now


class DeploymentService:
    """Endpoints and their rollouts."""

    actor = ActorAttribute()

    def __init__(
        self,
        db: MetadataStore,
        settings: Settings,
        *,
        models: ModelService,
        features: FeatureService,
        promotion: PromotionService,
    ) -> None:
        self.store = SqlServingStore(
            db,
            storage_options=(
                {"client_kwargs": {"endpoint_url": settings.s3_endpoint_url}}
                if settings.s3_endpoint_url
                else None
            ),
        )
        self.settings = settings
        self.actor = settings.actor()
        self.models = models
        self.features = features
        self.promotion = promotion
        self.registry = RegistryLink(models, promotion)

    # -- variants -----------------------------------------------------------------------

    def _variant(
        self,
        model: str,
        version: int | None,
        role: str,
        *,
        explained_for: str | None = None,
        **extra: Any,
    ) -> Variant:
        """A checked variant (see :func:`milepost.serving._variants.checked_variant`)."""
        return checked_variant(
            self.models, self.features, model, version, role, explained_for=explained_for, **extra
        )

    def create(
        self,
        name: str,
        model: str,
        *,
        version: int | None = None,
        stage: str | None = None,
        replicas: int = 1,
        log_predictions: bool = True,
        consequential: bool = False,
    ) -> EndpointSpec:
        """Create an endpoint that tracks Production of ``model`` (the default), or one
        pinned to ``version``.

        A tracking endpoint serves the registry's Production version now, and later only
        what a promotion lets into Production (see the module docstring). A pinned one
        serves the version it names, whatever its stage, and its rollouts leave the
        registry alone.

        ``consequential``: its answers are decisions about people, each logged with its
        explanation (see :mod:`milepost.serving.decisions`); the version must be
        explainable and predictions logged.

        Raises:
            InvalidInput: a bad name, both ``version`` and ``stage``, or a stage other
                than Production; the version fails its smoke test; a consequential
                endpoint without logging, or whose version cannot be explained.
            Conflict: the model has no Production version to track (or it moved while
                the endpoint was created).
            AlreadyExists: the name is taken, or another endpoint tracks this stage.
        """
        _endpoint(name)
        check_create(name, model, version, stage, replicas, log_predictions, consequential)
        track = None
        if version is None:
            track, version = self.registry.track(name, model, stage or "Production")
        spec = EndpointSpec(
            variants=[
                self._variant(
                    model, version, "primary", explained_for=name if consequential else None
                )
            ],
            replicas=replicas,
            log_predictions=log_predictions,
            track=track,
            consequential=consequential,
        )
        self.store.create(
            name,
            spec,
            actor=self.actor,
            before=self.registry.still_production(model, version, name) if track else None,
        )
        return spec

    def get(self, name: str) -> tuple[EndpointSpec, int]:
        """An endpoint's spec and revision."""
        _endpoint(name)
        return self.store.get(name)

    def _update(
        self,
        name: str,
        current: EndpointSpec,
        change: Callable[[EndpointSpec], EndpointSpec],
        *,
        kind: str,
        reason: str | None = None,
        details: Any = None,
        after: Callable[[Connection, EndpointSpec, EndpointSpec], None] | None = None,
    ) -> EndpointSpec:
        """One audited spec change; for a tracking endpoint, with its model locked first
        and ``after`` changing the registry in the same transaction."""
        return self.store.update(
            name,
            change,
            kind=kind,
            actor=self.actor,
            reason=reason,
            details=details,
            before=self.registry.lock(current),
            after=after if current.track is not None else None,
        )[0]

    # -- strategies ---------------------------------------------------------------------

    def blue_green(self, name: str, version: int, *, model: str | None = None) -> EndpointSpec:
        """Load the new version beside the old one, with no traffic (preview)."""
        _endpoint(name)
        _target(version, model)
        current, _ = self.store.get(name)
        rollouts.busy(current, "blue/green")
        model = self.registry.model_for(current, model)
        candidate = self._variant(
            model, version, "standby", explained_for=explained_for(name, current)
        )
        request_id = self.registry.admit(name, current, version, "blue/green")

        def preview(spec: EndpointSpec) -> Rollout:
            return Rollout(
                kind="blue_green",
                status="preview",
                candidate=candidate.name,
                previous=spec.primary.name,
                step_started_at=_now(),
                detail="loaded beside the primary; no traffic yet",
                request_id=request_id,
            )

        return self._update(
            name,
            current,
            lambda spec: rollouts.start(spec, candidate, "blue/green", preview),
            kind="blue_green.start",
            after=self.registry.claim(name, request_id),
        )

    def switch(self, name: str, *, reason: str | None = None) -> EndpointSpec:
        """Blue/green: move all traffic to the candidate at once; keep the old one warm.

        On a tracking endpoint the candidate becomes Production in the same transaction.
        """
        _endpoint(name)
        reason = check.optional_text(reason, "reason")
        current, _ = self.store.get(name)

        return self._update(
            name,
            current,
            lambda spec: rollouts.switch(spec, name, reason),
            kind="blue_green.switch",
            reason=reason,
            after=self.registry.complete(name),
        )

    def canary(
        self,
        name: str,
        version: int,
        *,
        model: str | None = None,
        policy: CanaryPolicy | None = None,
    ) -> EndpointSpec:
        """Start a canary at the first step of its policy.

        On a tracking endpoint the version's promotion to Production must be approved, or
        it starts here (its gates run first; see the module docstring).
        """
        _endpoint(name)
        _target(version, model)
        policy = rollouts.checked_policy(CanaryPolicy() if policy is None else policy)
        current, _ = self.store.get(name)
        rollouts.busy(current, "a canary")
        model = self.registry.model_for(current, model)
        candidate = self._variant(
            model,
            version,
            "canary",
            explained_for=explained_for(name, current),
            weight=policy.steps[0],
        )
        request_id = self.registry.admit(name, current, version, "canary")

        def first_step(spec: EndpointSpec) -> Rollout:
            return rollouts.canary_rollout(
                candidate.name, spec.primary.name, policy, "step 1", request_id
            )

        return self._update(
            name,
            current,
            lambda spec: rollouts.start(spec, candidate, "a canary", first_step),
            kind="canary.start",
            after=self.registry.claim(name, request_id),
        )

    def shadow(
        self, name: str, version: int, *, model: str | None = None, share: float = 1.0
    ) -> EndpointSpec:
        """Mirror ``share`` of requests to a version whose answers are only logged."""
        _endpoint(name)
        _target(version, model)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise InvalidInput(f"Shadow share {share} must be in (0, 1].")
        current, _ = self.store.get(name)
        rollouts.busy(current, "a shadow")
        candidate = self._variant(
            self.registry.model_for(current, model), version, "shadow", share=share
        )

        def mirroring(spec: EndpointSpec) -> Rollout:
            return Rollout(
                kind="shadow",
                status="mirroring",
                candidate=candidate.name,
                previous=spec.primary.name,
                step_started_at=_now(),
                detail=f"mirroring {share:.0%} of requests",
            )

        return self._update(
            name,
            current,
            lambda spec: rollouts.start(spec, candidate, "a shadow", mirroring),
            kind="shadow.start",
        )

    def rolling(self, name: str, version: int, *, model: str | None = None) -> EndpointSpec:
        """Replace replicas one at a time with the new version (the supervisors do it)."""
        _endpoint(name)
        _target(version, model)
        current, _ = self.store.get(name)
        rollouts.busy(current, "a rolling update")
        model = self.registry.model_for(current, model)
        candidate = self._variant(
            model, version, "standby", explained_for=explained_for(name, current)
        )
        request_id = self.registry.admit(name, current, version, "rolling update")

        def replacing(spec: EndpointSpec) -> Rollout:
            spec.generation += 1
            return Rollout(
                kind="rolling",
                status="in_progress",
                candidate=candidate.name,
                previous=spec.primary.name,
                step_started_at=_now(),
                target_generation=spec.generation,
                detail="replacing replicas one at a time",
                request_id=request_id,
            )

        return self._update(
            name,
            current,
            lambda spec: rollouts.start(spec, candidate, "a rolling update", replacing),
            kind="rolling.start",
            after=self.registry.claim(name, request_id),
        )

    def complete_rolling(self, name: str) -> EndpointSpec:
        """Every replica runs the candidate: make it the primary (previous kept warm).

        On a tracking endpoint the candidate becomes Production in the same transaction.
        """
        _endpoint(name)
        current, _ = self.store.get(name)

        return self._update(
            name,
            current,
            rollouts.complete_rolling,
            kind="rolling.complete",
            after=self.registry.complete(name),
        )

    def promote(
        self, name: str, *, reason: str | None = None, policy: CanaryPolicy | None = None
    ) -> EndpointSpec:
        """Canary: go to the next step (at the last: make it primary). Shadow: start a
        canary (with ``policy``, default :class:`CanaryPolicy`); on a tracking endpoint,
        with the promotion request a canary carries (see :meth:`canary`)."""
        _endpoint(name)
        reason = check.optional_text(reason, "reason")
        if policy is not None:
            rollouts.checked_policy(policy)
        spec, _ = self.store.get(name)
        ro = spec.rollout
        if ro is not None and ro.kind == "shadow" and ro.status == "mirroring":
            shadow = spec.variant(ro.candidate)
            if shadow is None:
                raise Conflict(f"The shadow {ro.candidate} is no longer in {name!r}.")
            canary = rollouts.checked_policy(policy or CanaryPolicy())
            if spec.consequential:  # its answers become decisions: they must be explained
                self._variant(shadow.model, shadow.version, "canary", explained_for=name)
            request_id = self.registry.admit(name, spec, shadow.version, "canary")

            candidate = ro.candidate
            return self._update(
                name,
                spec,
                lambda s: rollouts.shadow_to_canary(s, candidate, canary, request_id),
                kind="shadow.promote",
                reason=reason,
                after=self.registry.claim(name, request_id),
            )
        if ro is None or ro.kind != "canary" or ro.status not in ("progressing", "paused"):
            raise Conflict("Nothing to promote: no canary in progress and no shadow mirroring.")
        return self._advance(name, reason or "promoted by hand", {})

    def _advance(self, name: str, reason: str, stats: dict[str, Any]) -> EndpointSpec:
        current, _ = self.store.get(name)

        last = (
            current.rollout is not None
            and current.rollout.canary is not None
            and (current.rollout.step + 1 >= len(current.rollout.canary.steps))
        )
        kind = "canary.promote" if last else "canary.advance"
        return self._update(
            name,
            current,
            lambda spec: rollouts.advance(spec, reason),
            kind=kind,
            reason=reason,
            details=stats,
            after=self.registry.complete(name),
        )

    def rollback(
        self,
        name: str,
        *,
        reason: str | None = None,
        stats: dict[str, Any] | None = None,
        only_in_progress: bool = False,
    ) -> EndpointSpec:
        """Back to the previous version, instantly (it is still loaded).

        On a tracking endpoint, the request the rollout carried is recorded
        ``rolled_back``; a rollout that had completed also returns the registry's
        Production to the previous version, in the same transaction.

        Args:
            name: the endpoint.
            reason: why (recorded in the events, the audit trail and the request).
            stats: what the decision was based on (the controller's numbers).
            only_in_progress: refuse unless the rollout is still under way (the
                controller: a rollout completed meanwhile by another process stays).

        Raises:
            Conflict: nothing to roll back, or the registry moved (the message says what
                to do instead).
        """
        _endpoint(name)
        reason = check.optional_text(reason, "reason")
        if stats is not None:
            check.mapping(stats, "stats")
        current, _ = self.store.get(name)
        text = reason or "rolled back by hand"

        return self._update(
            name,
            current,
            lambda spec: rollouts.roll_back(spec, text, only_in_progress),
            kind="rollback",
            reason=reason,
            details=stats,
            after=self.registry.undo(name, text),
        )

    def finalize(self, name: str) -> EndpointSpec:
        """Retire the previous version (rollback is no longer possible after this)."""
        _endpoint(name)
        current, _ = self.store.get(name)

        return self._update(name, current, rollouts.finalize, kind="finalize")

    def set_replicas(self, name: str, replicas: int) -> EndpointSpec:
        """Change the replica count (each host's supervisor follows)."""
        _endpoint(name)
        check.integer(replicas, "Replicas", minimum=1, maximum=64)
        current, _ = self.store.get(name)

        def change(spec: EndpointSpec) -> EndpointSpec:
            spec.replicas = replicas
            return spec

        return self._update(name, current, change, kind="scale")

    def set_consequential(
        self, name: str, consequential: bool = True, *, reason: str | None = None
    ) -> EndpointSpec:
        """Mark an endpoint as making consequential decisions (or unmark it), audited.

        Marked, every answer is logged with its explanation from the replicas' next
        routing refresh on (within a second); requests answered before have no decision
        record. Marking checks that each variant that answers (all but shadows) can be
        explained, and that the endpoint logs its predictions.

        Raises:
            InvalidInput: the endpoint does not log predictions, or a variant cannot be
                explained (the message names it and why).
            Conflict: the variants changed while they were being checked.
        """
        _endpoint(name)
        check.boolean(consequential, "consequential")
        reason = check.optional_text(reason, "reason")
        from milepost.serving._decisions_read import consequential_change

        current, _ = self.store.get(name)
        change = consequential_change(
            name,
            current,
            consequential,
            lambda v: self._variant(v.model, v.version, v.role, explained_for=name),
        )
        return self._update(
            name,
            current,
            change,
            kind="consequential.mark" if consequential else "consequential.unmark",
            reason=reason,
        )

    def fail_rolling(self, name: str, reason: str) -> EndpointSpec:
        """A new replica never became ready: restore the previous version."""
        _endpoint(name)
        check.text(reason, "reason")
        current, _ = self.store.get(name)

        return self._update(
            name,
            current,
            lambda spec: rollouts.abort_rolling(spec, reason),
            kind="rolling.abort",
            reason=reason,
            after=self.registry.undo(name, reason),
        )

    # -- analysis and the controller ------------------------------------------------------

    def stats(
        self, name: str, *, since_ms: int, until_ms: int | None = None
    ) -> dict[str, VariantStats]:
        """Per-variant requests, errors and latency from the prediction log in
        ``[since_ms, until_ms]`` (epoch ms)."""
        _endpoint(name)
        check.integer(since_ms, "since_ms")
        if until_ms is not None:
            check.integer(until_ms, "until_ms")
        return variant_stats(self.store, name, since_ms=since_ms, until_ms=until_ms)

    def tick(self, name: str) -> Decision:
        """One controller step for a canary: hold, advance, promote or roll back.

        Safe to run from several processes at once: each decision is applied only if the
        rollout is still where this step saw it (otherwise ``none``).
        """
        _endpoint(name)

        def rollback(reason: str, info: dict[str, Any]) -> None:
            self.rollback(name, reason=f"automatic: {reason}", stats=info, only_in_progress=True)

        return tick(
            self.store,
            name,
            advance=lambda reason, info: self._advance(name, reason, info),
            rollback=rollback,
        )

    def status(self, name: str, *, window_seconds: float = 300) -> dict[str, Any]:
        """The spec, what it tracks and whether the registry agrees, the rollout (with its
        promotion request), recent events and per-variant stats over a stated window
        (``window``: since, until, in epoch ms)."""
        _endpoint(name)
        return endpoint_status(self.store, self.registry, name, window_seconds)

    # -- decision records and retention ---------------------------------------------------

    def decision(self, request_id: str, *, row: int = 0) -> DecisionRecord:
        """A consequential endpoint's decision, read back from the prediction log by the
        ``request_id`` of its answer (``row``: which row of a many-row request).

        The input, the version that answered, the answer and its explanation come from
        the log alone; the model is not loaded. A request answered within the last
        second may not be in a segment yet.

        Raises:
            NotFound: no endpoint logged that request id (unknown, not yet written, or
                pruned), or its endpoint keeps no decision records (not consequential,
                or not yet when it answered).
            InvalidInput: ``row`` is beyond the request's rows.
        """
        from milepost.serving._decisions_read import read_decision

        check.text(request_id, "request_id")
        check.integer(row, "row", minimum=0)
        return read_decision(self.store, request_id, row)

    def decisions(
        self, endpoint: str, *, since_ms: int | None = None, limit: int = 50
    ) -> list[DecisionRecord]:
        """A consequential endpoint's recorded decisions, newest first.

        Args:
            endpoint: the endpoint.
            since_ms: only decisions at or after this time (epoch ms); None: all kept.
            limit: at most this many.

        Raises:
            NotFound: the endpoint does not exist, or it is not consequential and holds
                no decision records.
        """
        from milepost.serving._decisions_read import read_decisions

        _endpoint(endpoint)
        if since_ms is not None:
            check.integer(since_ms, "since_ms", minimum=0)
        check.integer(limit, "limit", minimum=1, maximum=100_000)
        return read_decisions(self.store, endpoint, since_ms=since_ms or 0, limit=limit)

    def prune_prediction_logs(
        self, *, now: int | datetime | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete prediction-log segments past their retention, with the feedback of their
        requests (``dry_run``: only say what would go). A segment holding decision
        records follows the ``decision_retention_days`` setting, any other
        ``prediction_log_retention_days``; unset keeps them forever. Audited per
        endpoint (``predictions.prune``, with the counts).

        Args:
            now: the time retention counts back from (epoch ms or an aware datetime;
                default now).
            dry_run: count, delete nothing.

        Raises:
            BackendUnavailable: a segment could not be read (nothing was deleted).
        """
        from milepost.serving._retention import epoch_ms, prune

        check.boolean(dry_run, "dry_run")
        return prune(
            self.store,
            now_ms=epoch_ms(now),
            log_days=self.settings.prediction_log_retention_days,
            decision_days=self.settings.decision_retention_days,
            actor=self.actor,
            dry_run=dry_run,
        )

    def list_endpoints(self) -> list[str]:
        """Every endpoint's name, in name order."""
        return self.store.names()

    endpoints = list_endpoints  # the wave-1 name, kept for one release

    def require(self, name: str) -> None:
        """Raise NotFound unless the endpoint exists."""
        _endpoint(name)
        if self.store.revision(name) is None:
            raise NotFound(
                f"Endpoint {name!r} does not exist.",
                hint="Create it with `milepost endpoints create`.",
            )

    def record(self, name: str, kind: str, reason: str, details: Any = None) -> None:
        """Record a supervisor event (rolling steps, replica replacements) without a spec change."""
        _endpoint(name)
        check.name(kind, "Event kind", max_length=64)
        check.text(reason, "reason")
        self.store.add_event(name, kind, actor=self.actor, reason=reason, details=details)


def describe(spec: EndpointSpec) -> str:
    """One line: who serves what."""
    parts = []
    for v in spec.variants:
        extra = (
            f" {v.weight:g}%"
            if v.role == "canary"
            else f" {v.share:.0%}"
            if v.role == "shadow"
            else ""
        )
        parts.append(f"{v.name} ({v.role}{extra})")
    return ", ".join(parts) + (
        f" · {spec.rollout.kind} {spec.rollout.status}" if spec.rollout else ""
    )
