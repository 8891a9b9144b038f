"""Deployments: endpoints, strategies and the rollout controller's decisions.

Every change is one audited update of the endpoint's spec (its revision grows) plus a
deployment event; replicas pick it up within a second. Strategies:

- **blue/green**: ``blue_green`` loads the new version beside the old with no traffic
  (after a readiness and smoke check), ``switch`` moves all traffic at once and keeps
  the old one warm, ``rollback`` switches back instantly, ``finalize`` retires the old.
- **canary**: ``canary`` sends a first step of traffic (sticky per key); the controller
  (:meth:`DeploymentService.tick`, run by ``milepost serve``) compares canary and primary
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
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.errors import Conflict, InvalidInput, NotFound
from milepost.models.uri import check_model_name
from milepost.serving.backends.sql import SqlServingStore
from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout, Variant

if TYPE_CHECKING:
    from milepost.config import Settings
    from milepost.features.service import FeatureService
    from milepost.models.service import ModelService
    from milepost.stores.metadata import MetadataStore

__all__ = ["Decision", "DeploymentService", "VariantStats"]


_ENDPOINT = re.compile(r"(?=.*[^\W_])[\w-]+")


def _endpoint(name: object) -> str:
    """An endpoint's name: letters, digits, '-' and '_' (at most 128)."""
    return check.name(
        name,
        "Endpoint name",
        max_length=128,
        pattern=_ENDPOINT,
        rule="use letters, digits, '-' and '_'",
    )


def _target(version: object, model: object) -> None:
    """The version (and model) a rollout asks for, checked before anything is loaded."""
    if version is not None:
        check.integer(version, "Model version", minimum=1)
    if model is not None:
        check_model_name(model)


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class VariantStats:
    """What the prediction log says about one variant in a window."""

    variant: str
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    agreement: float | None = None  # shadows: share of answers equal to what clients got
    first_at: int | None = None  # epoch ms of its first request in the window

    @property
    def error_rate(self) -> float:
        """Errors per request (0 with no requests)."""
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "variant": self.variant,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "agreement": self.agreement,
        }


@dataclass(frozen=True)
class Decision:
    """What the controller decided at one tick, and why."""

    action: str  # hold | advance | promote | rollback | none
    reason: str
    stats: dict[str, Any] = field(default_factory=dict)


class DeploymentService:
    """Endpoints and their rollouts."""

    def __init__(
        self,
        db: MetadataStore,
        settings: Settings,
        *,
        models: ModelService,
        features: FeatureService,
    ) -> None:
        self.store = SqlServingStore(db)
        self.settings = settings
        self.actor = settings.actor()
        self.models = models
        self.features = features
        self._last_hold: dict[str, str] = {}

    # -- variants -----------------------------------------------------------------------

    def _variant(self, model: str, version: int | None, role: str, **extra: Any) -> Variant:
        """A checked variant: the version exists, loads, predicts its example, and its
        pinned features are materialized (serving refuses it otherwise)."""
        mv = (
            self.models.get_version(model, version)
            if version is not None
            else self.models.resolve(f"models:/{model}/Production")
        )
        loaded = self.models.load(mv, prefer_onnx=True)
        if mv.feature_refs:
            self.features.serving_reader(mv.feature_refs)
        if mv.input_example:
            try:
                loaded.predict(mv.input_example)
            except Exception as exc:
                raise InvalidInput(
                    f"{mv.uri} failed its smoke test on its input example: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return Variant.model_validate(
            {
                "name": f"{model}-v{mv.version}",
                "model": model,
                "version": mv.version,
                "role": role,
                **extra,
            }
        )

    def create(
        self,
        name: str,
        model: str,
        *,
        version: int | None = None,
        replicas: int = 1,
        log_predictions: bool = True,
    ) -> EndpointSpec:
        """Create an endpoint serving one version (default: the Production one)."""
        _endpoint(name)
        check_model_name(model)
        _target(version, None)
        check.integer(replicas, "replicas", minimum=1, maximum=64)
        check.boolean(log_predictions, "log_predictions")
        spec = EndpointSpec(
            variants=[self._variant(model, version, "primary")],
            replicas=replicas,
            log_predictions=log_predictions,
        )
        self.store.create(name, spec, actor=self.actor)
        return spec

    def get(self, name: str) -> tuple[EndpointSpec, int]:
        """An endpoint's spec and revision."""
        _endpoint(name)
        return self.store.get(name)

    def _busy(self, spec: EndpointSpec, what: str) -> None:
        ro = spec.rollout
        if ro is not None and ro.status in (
            "preview",
            "progressing",
            "mirroring",
            "in_progress",
            "paused",
        ):
            raise Conflict(
                f"A {ro.kind} rollout of {ro.candidate} is {ro.status}; cannot start {what}.",
                hint="Finish it (switch, promote, finalize) or roll it back first.",
            )

    def _without_standby(self, spec: EndpointSpec) -> None:
        spec.variants = [v for v in spec.variants if v.role not in ("standby", "shadow")]

    def _add(self, spec: EndpointSpec, variant: Variant) -> None:
        existing = spec.variant(variant.name)
        if existing is not None:
            raise Conflict(f"{variant.name} is already in this endpoint ({existing.role}).")
        spec.variants.append(variant)

    # -- strategies ---------------------------------------------------------------------

    def blue_green(self, name: str, version: int, *, model: str | None = None) -> EndpointSpec:
        """Load the new version beside the old one, with no traffic (preview)."""
        _endpoint(name)
        _target(version, model)
        current, _ = self.store.get(name)
        candidate = self._variant(model or current.primary.model, version, "standby")

        def change(spec: EndpointSpec) -> EndpointSpec:
            self._busy(spec, "blue/green")
            self._without_standby(spec)
            self._add(spec, candidate)
            spec.rollout = Rollout(
                kind="blue_green",
                status="preview",
                candidate=candidate.name,
                previous=spec.primary.name,
                step_started_at=_now(),
                detail="loaded beside the primary; no traffic yet",
            )
            return spec

        return self.store.update(name, change, kind="blue_green.start", actor=self.actor)[0]

    def switch(self, name: str, *, reason: str | None = None) -> EndpointSpec:
        """Blue/green: move all traffic to the candidate at once; keep the old one warm."""
        _endpoint(name)
        reason = check.optional_text(reason, "reason")

        def change(spec: EndpointSpec) -> EndpointSpec:
            ro = spec.rollout
            if ro is None or ro.kind != "blue_green" or ro.status != "preview":
                raise Conflict(
                    "No blue/green preview to switch to.",
                    hint="Start one with `milepost deploy blue-green`.",
                )
            for v in spec.variants:
                if v.name == ro.candidate:
                    v.role, v.weight = "primary", 0
                elif v.name == ro.previous:
                    v.role, v.weight = "standby", 0
            ro.status, ro.detail = "switched", "all traffic on the candidate; previous kept warm"
            return spec

        return self.store.update(
            name, change, kind="blue_green.switch", actor=self.actor, reason=reason
        )[0]

    def canary(
        self,
        name: str,
        version: int,
        *,
        model: str | None = None,
        policy: CanaryPolicy | None = None,
    ) -> EndpointSpec:
        """Start a canary at the first step of its policy."""
        _endpoint(name)
        _target(version, model)
        policy = _checked(CanaryPolicy() if policy is None else policy)
        current, _ = self.store.get(name)
        candidate = self._variant(
            model or current.primary.model, version, "canary", weight=policy.steps[0]
        )

        def change(spec: EndpointSpec) -> EndpointSpec:
            self._busy(spec, "a canary")
            self._without_standby(spec)
            self._add(spec, candidate)
            spec.rollout = _canary_rollout(candidate.name, spec.primary.name, policy, "step 1")
            return spec

        return self.store.update(name, change, kind="canary.start", actor=self.actor)[0]

    def shadow(
        self, name: str, version: int, *, model: str | None = None, share: float = 1.0
    ) -> EndpointSpec:
        """Mirror ``share`` of requests to a version whose answers are only logged."""
        _endpoint(name)
        _target(version, model)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise InvalidInput(f"Shadow share {share} must be in (0, 1].")
        current, _ = self.store.get(name)
        candidate = self._variant(model or current.primary.model, version, "shadow", share=share)

        def change(spec: EndpointSpec) -> EndpointSpec:
            self._busy(spec, "a shadow")
            self._without_standby(spec)
            self._add(spec, candidate)
            spec.rollout = Rollout(
                kind="shadow",
                status="mirroring",
                candidate=candidate.name,
                previous=spec.primary.name,
                step_started_at=_now(),
                detail=f"mirroring {share:.0%} of requests",
            )
            return spec

        return self.store.update(name, change, kind="shadow.start", actor=self.actor)[0]

    def rolling(self, name: str, version: int, *, model: str | None = None) -> EndpointSpec:
        """Replace replicas one at a time with the new version (the supervisors do it)."""
        _endpoint(name)
        _target(version, model)
        current, _ = self.store.get(name)
        candidate = self._variant(model or current.primary.model, version, "standby")

        def change(spec: EndpointSpec) -> EndpointSpec:
            self._busy(spec, "a rolling update")
            self._without_standby(spec)
            self._add(spec, candidate)
            spec.generation += 1
            spec.rollout = Rollout(
                kind="rolling",
                status="in_progress",
                candidate=candidate.name,
                previous=spec.primary.name,
                step_started_at=_now(),
                target_generation=spec.generation,
                detail="replacing replicas one at a time",
            )
            return spec

        return self.store.update(name, change, kind="rolling.start", actor=self.actor)[0]

    def complete_rolling(self, name: str) -> EndpointSpec:
        """Every replica runs the candidate: make it the primary (previous kept warm)."""
        _endpoint(name)

        def change(spec: EndpointSpec) -> EndpointSpec:
            ro = spec.rollout
            if ro is None or ro.kind != "rolling" or ro.status != "in_progress":
                raise Conflict("No rolling update in progress.")
            for v in spec.variants:
                if v.name == ro.candidate:
                    v.role = "primary"
                elif v.name == ro.previous:
                    v.role = "standby"
            ro.status, ro.detail = "succeeded", "every replica replaced"
            return spec

        return self.store.update(name, change, kind="rolling.complete", actor=self.actor)[0]

    def promote(
        self, name: str, *, reason: str | None = None, policy: CanaryPolicy | None = None
    ) -> EndpointSpec:
        """Canary: go to the next step (at the last: make it primary). Shadow: start a
        canary (with ``policy``, default :class:`CanaryPolicy`)."""
        _endpoint(name)
        reason = check.optional_text(reason, "reason")
        if policy is not None:
            _checked(policy)
        spec, _ = self.store.get(name)
        ro = spec.rollout
        if ro is not None and ro.kind == "shadow" and ro.status == "mirroring":
            shadow = spec.variant(ro.candidate)
            assert shadow is not None

            canary = _checked(policy or CanaryPolicy())

            def to_canary(s: EndpointSpec) -> EndpointSpec:
                v = s.variant(ro.candidate)
                assert v is not None
                v.role, v.weight, v.share = "canary", canary.steps[0], 0.0
                s.rollout = _canary_rollout(v.name, s.primary.name, canary, "from shadow")
                return s

            return self.store.update(
                name, to_canary, kind="shadow.promote", actor=self.actor, reason=reason
            )[0]
        if ro is None or ro.kind != "canary" or ro.status not in ("progressing", "paused"):
            raise Conflict("Nothing to promote: no canary in progress and no shadow mirroring.")
        return self._advance(name, reason or "promoted by hand", {})

    def _advance(self, name: str, reason: str, stats: dict[str, Any]) -> EndpointSpec:
        def change(spec: EndpointSpec) -> EndpointSpec:
            ro = spec.rollout
            if (
                ro is None
                or ro.kind != "canary"
                or ro.canary is None
                or ro.status not in ("progressing", "paused")
            ):
                raise Conflict("No canary in progress.")
            cand = spec.variant(ro.candidate)
            assert cand is not None
            if ro.step + 1 >= len(ro.canary.steps) or ro.canary.steps[ro.step] >= 100:
                prev = spec.variant(ro.previous or "")
                cand.role, cand.weight = "primary", 0
                if prev is not None:
                    prev.role, prev.weight = "standby", 0
                ro.status, ro.detail = "succeeded", f"promoted to primary: {reason}"
            else:
                ro.step += 1
                cand.weight = ro.canary.steps[ro.step]
                ro.step_started_at = _now()
                ro.status = "progressing"
                ro.detail = f"step {ro.step + 1}: {cand.weight:g}% of traffic ({reason})"
            return spec

        spec, _ = self.store.get(name)
        last = (
            spec.rollout is not None
            and spec.rollout.canary is not None
            and (spec.rollout.step + 1 >= len(spec.rollout.canary.steps))
        )
        kind = "canary.promote" if last else "canary.advance"
        return self.store.update(
            name, change, kind=kind, actor=self.actor, reason=reason, details=stats
        )[0]

    def rollback(
        self, name: str, *, reason: str | None = None, stats: dict[str, Any] | None = None
    ) -> EndpointSpec:
        """Back to the previous version, instantly (it is still loaded)."""
        _endpoint(name)
        reason = check.optional_text(reason, "reason")
        if stats is not None:
            check.mapping(stats, "stats")

        def change(spec: EndpointSpec) -> EndpointSpec:
            ro = spec.rollout
            if ro is None or ro.previous is None or ro.status in ("rolled_back", "finalized"):
                raise Conflict(
                    "Nothing to roll back: no rollout whose previous version is still kept.",
                    hint="See `milepost deploy status`.",
                )
            prev = spec.variant(ro.previous)
            if prev is None:
                raise Conflict(
                    f"The previous version {ro.previous} was finalized away; deploy it again."
                )
            spec.variants = [v for v in spec.variants if v.name != ro.candidate]
            for v in spec.variants:
                if v.name == ro.previous:
                    v.role, v.weight, v.share = "primary", 0, 0.0
            ro.status, ro.detail = "rolled_back", reason or "rolled back by hand"
            return spec

        return self.store.update(
            name, change, kind="rollback", actor=self.actor, reason=reason, details=stats
        )[0]

    def finalize(self, name: str) -> EndpointSpec:
        """Retire the previous version (rollback is no longer possible after this)."""
        _endpoint(name)

        def change(spec: EndpointSpec) -> EndpointSpec:
            ro = spec.rollout
            if ro is None or ro.status not in ("switched", "succeeded"):
                raise Conflict("Nothing to finalize: finish the rollout (switch or promote) first.")
            spec.variants = [v for v in spec.variants if v.role != "standby"]
            ro.status, ro.detail = "finalized", "previous version retired"
            return spec

        return self.store.update(name, change, kind="finalize", actor=self.actor)[0]

    def set_replicas(self, name: str, replicas: int) -> EndpointSpec:
        """Change the replica count (each host's supervisor follows)."""
        _endpoint(name)
        check.integer(replicas, "Replicas", minimum=1, maximum=64)

        def change(spec: EndpointSpec) -> EndpointSpec:
            spec.replicas = replicas
            return spec

        return self.store.update(name, change, kind="scale", actor=self.actor)[0]

    def fail_rolling(self, name: str, reason: str) -> EndpointSpec:
        """A new replica never became ready: restore the previous version."""
        _endpoint(name)
        check.text(reason, "reason")

        def change(spec: EndpointSpec) -> EndpointSpec:
            ro = spec.rollout
            if ro is None or ro.kind != "rolling":
                raise Conflict("No rolling update to abort.")
            spec.variants = [v for v in spec.variants if v.name != ro.candidate]
            ro.status, ro.detail = "rolled_back", reason
            return spec

        return self.store.update(
            name, change, kind="rolling.abort", actor=self.actor, reason=reason
        )[0]

    # -- analysis and the controller ------------------------------------------------------

    def stats(self, name: str, *, since_ms: int) -> dict[str, VariantStats]:
        """Per-variant requests, errors and latency from the prediction log since a moment."""
        _endpoint(name)
        check.integer(since_ms, "since_ms")
        import duckdb

        from milepost.data._profile import source_sql

        paths = [p for p in self.store.segments(name, since_ms=since_ms)]
        if not paths:
            return {}
        from pathlib import Path

        existing = [Path(p) for p in paths if Path(p).exists()]
        if not existing:
            return {}
        con = duckdb.connect()
        try:
            con.execute(
                f"CREATE VIEW log AS SELECT * FROM {source_sql(existing)} "
                f"WHERE ts >= epoch_ms({int(since_ms)}) AND row = 0"
            )
            rows = con.execute(
                "SELECT variant, count(*), count(*) FILTER (WHERE status = 'error'), "
                "quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99), "
                "epoch_ms(min(ts)) FROM log GROUP BY variant"
            ).fetchall()
            agreement = dict(
                con.execute(
                    "SELECT s.variant, "
                    "avg(CASE WHEN s.prediction = p.prediction THEN 1.0 ELSE 0.0 END) "
                    "FROM log s JOIN log p ON s.request_id = p.request_id AND p.role <> 'shadow' "
                    "WHERE s.role = 'shadow' AND s.status = 'ok' GROUP BY s.variant"
                ).fetchall()
            )
        finally:
            con.close()
        return {
            v: VariantStats(v, int(n), int(e), p50, p99, agreement.get(v), int(first))
            for v, n, e, p50, p99, first in rows
        }

    def tick(self, name: str) -> Decision:
        """One controller step for a canary: hold, advance, promote or roll back."""
        _endpoint(name)
        spec, _ = self.store.get(name)
        ro = spec.rollout
        if ro is None or ro.kind != "canary" or ro.status != "progressing" or ro.canary is None:
            return Decision("none", "no canary in progress")
        policy = ro.canary
        stats = self.stats(name, since_ms=ro.step_started_at)
        cand = stats.get(ro.candidate, VariantStats(ro.candidate, 0, 0, None, None))
        if cand.first_at is not None and cand.first_at > ro.step_started_at:
            # Compare from the canary's first answer: before it, replicas were loading it
            # (CPU the primary's requests competed for), which says nothing about either.
            narrowed = self.stats(name, since_ms=cand.first_at)
            if narrowed.get(ro.previous or "") is not None:  # the primary is still compared
                stats = narrowed
                cand = stats.get(ro.candidate, cand)
        prim = stats.get(ro.previous or "", VariantStats(ro.previous or "", 0, 0, None, None))
        info = {"canary": cand.to_dict(), "primary": prim.to_dict(), "step": ro.step}
        elapsed = (_now() - ro.step_started_at) / 1000
        # a clearly broken canary is rolled back without waiting out the step
        if cand.requests >= min(
            20, policy.min_requests
        ) and cand.error_rate > prim.error_rate + max(policy.max_error_rate_increase, 0.5):
            return self._rollback_decision(
                name, f"canary errors {cand.error_rate:.1%} vs primary {prim.error_rate:.1%}", info
            )
        if cand.requests < policy.min_requests or elapsed < policy.min_seconds:
            return self._hold(
                name,
                f"step {ro.step + 1}: {cand.requests}/{policy.min_requests} requests, "
                f"{elapsed:.0f}/{policy.min_seconds:g} s — too little to decide",
                info,
            )
        if cand.error_rate > prim.error_rate + policy.max_error_rate_increase:
            return self._rollback_decision(
                name,
                f"canary error rate {cand.error_rate:.2%} > primary {prim.error_rate:.2%} + "
                f"{policy.max_error_rate_increase:.2%}",
                info,
            )
        if (
            cand.p99_ms is not None
            and prim.p99_ms
            and cand.p99_ms > prim.p99_ms * policy.max_p99_ratio
            and cand.p99_ms - prim.p99_ms > policy.min_p99_increase_ms
        ):
            return self._rollback_decision(
                name,
                f"canary p99 {cand.p99_ms:.1f} ms > {policy.max_p99_ratio:g} x primary "
                f"{prim.p99_ms:.1f} ms",
                info,
            )
        if policy.max_prediction_psi is not None:
            value = self._prediction_psi(name, ro.step_started_at, ro.candidate, ro.previous or "")
            info["prediction_psi"] = value
            if value is not None and value > policy.max_prediction_psi:
                return self._rollback_decision(
                    name, f"prediction PSI {value:.3f} > {policy.max_prediction_psi:g}", info
                )
        reason = (
            f"step {ro.step + 1} healthy: errors {cand.error_rate:.2%} vs {prim.error_rate:.2%}, "
            f"p99 {cand.p99_ms or 0:.1f} vs {prim.p99_ms or 0:.1f} ms over {cand.requests} requests"
        )
        after = self._advance(name, reason, info)
        self._last_hold.pop(name, None)
        action = "promote" if after.rollout and after.rollout.status == "succeeded" else "advance"
        return Decision(action, reason, info)

    def _hold(self, name: str, reason: str, info: dict[str, Any]) -> Decision:
        return Decision("hold", reason, info)

    def _rollback_decision(self, name: str, reason: str, info: dict[str, Any]) -> Decision:
        self.rollback(name, reason=f"automatic: {reason}", stats=info)
        return Decision("rollback", reason, info)

    def _prediction_psi(
        self, name: str, since_ms: int, candidate: str, primary: str
    ) -> float | None:
        from pathlib import Path

        import duckdb

        from milepost.data._profile import source_sql
        from milepost.stats import psi

        paths = [Path(p) for p in self.store.segments(name, since_ms=since_ms) if Path(p).exists()]
        if not paths:
            return None
        con = duckdb.connect()
        try:
            rows = con.execute(
                "SELECT prediction, count(*) FILTER (WHERE variant = ?), "
                "count(*) FILTER (WHERE variant = ?) "
                f"FROM {source_sql(paths)} WHERE ts >= epoch_ms({int(since_ms)}) AND status = 'ok' "
                "GROUP BY prediction",
                [primary, candidate],
            ).fetchall()
        finally:
            con.close()
        if not rows or not sum(r[1] for r in rows) or not sum(r[2] for r in rows):
            return None
        return psi([r[1] for r in rows], [r[2] for r in rows])

    def status(self, name: str, *, window_seconds: float = 300) -> dict[str, Any]:
        """The spec, the rollout, recent events and per-variant stats."""
        _endpoint(name)
        if (
            isinstance(window_seconds, bool)
            or not isinstance(window_seconds, (int, float))
            or not 0 < window_seconds <= 10 * 365 * 86400
        ):
            raise InvalidInput(
                f"window_seconds must be a positive number of seconds (at most ten years), "
                f"got {check.short_repr(window_seconds)}."
            )
        spec, revision = self.store.get(name)
        since = _now() - int(window_seconds * 1000)
        if spec.rollout is not None and spec.rollout.status in (
            "progressing",
            "mirroring",
            "preview",
        ):
            since = max(since, spec.rollout.step_started_at)
        return {
            "endpoint": name,
            "revision": revision,
            **spec.summary(),
            "stats": {k: v.to_dict() for k, v in self.stats(name, since_ms=since).items()},
            "events": self.store.events(name, limit=15),
        }

    def endpoints(self) -> list[str]:
        """Every endpoint."""
        return self.store.names()

    def require(self, name: str) -> None:
        """Raise NotFound unless the endpoint exists."""
        _endpoint(name)
        if self.store.revision(name) is None:
            raise NotFound(
                f"Endpoint {name!r} does not exist.",
                hint="Create it with `milepost deploy create`.",
            )

    def record(self, name: str, kind: str, reason: str, details: Any = None) -> None:
        """Record a supervisor event (rolling steps, replica replacements) without a spec change."""
        _endpoint(name)
        check.name(kind, "Event kind", max_length=64)
        check.text(reason, "reason")
        self.store.add_event(name, kind, actor=self.actor, reason=reason, details=details)


def _checked(policy: CanaryPolicy) -> CanaryPolicy:
    if not isinstance(policy, CanaryPolicy):
        raise InvalidInput(
            f"A canary policy is a CanaryPolicy, got {check.short_repr(policy)} "
            f"({type(policy).__name__}).",
            hint="milepost.serving.CanaryPolicy(steps=[10, 50, 100], ...)",
        )
    if (
        not policy.steps
        or any(not 0 < s <= 100 for s in policy.steps)
        or policy.steps != sorted(policy.steps)
    ):
        raise InvalidInput(f"Canary steps {policy.steps} must rise from above 0 to at most 100.")
    return policy


def _canary_rollout(candidate: str, previous: str, policy: CanaryPolicy, how: str) -> Rollout:
    return Rollout(
        kind="canary",
        status="progressing",
        candidate=candidate,
        previous=previous,
        step=0,
        step_started_at=_now(),
        canary=policy,
        detail=f"{how}: {policy.steps[0]:g}% of traffic",
    )


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
