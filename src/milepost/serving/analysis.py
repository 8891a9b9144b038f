"""Canary analysis: the controller's verdict on a rollout step, from the prediction log.

The figures come from :mod:`milepost.monitoring` (per-variant requests, errors and
latency, prediction PSI), the one reader of the prediction log; this module holds the
policy that judges them (:func:`judge`) and the controller's step that acts on the verdict
(:func:`tick`). ``VariantStats``, ``variant_stats``,
``prediction_psi`` and ``fmt_ms`` are re-exported from there. ``endpoints show``, the canary
controller and the demo all read these, so ``p99 2.3 ms`` reads the same everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict, short
from milepost.errors import Conflict
from milepost.monitoring.predictions import VariantStats, fmt_ms, prediction_psi, variant_stats

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.serving.backends.sql import SqlServingStore
    from milepost.serving.spec import CanaryPolicy, EndpointSpec, Rollout

__all__ = [
    "Decision",
    "VariantStats",
    "fmt_ms",
    "judge",
    "prediction_psi",
    "tick",
    "variant_stats",
]


@dataclass(frozen=True)
class Decision:
    """What the controller decided at one tick, and why."""

    action: str  # hold | advance | promote | rollback | none
    reason: str
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"Decision({self.action}: {short(self.reason)})"


def judge(
    store: SqlServingStore, name: str, ro: Rollout, policy: CanaryPolicy
) -> tuple[str, str, dict[str, Any]]:
    """The controller's verdict on a canary step: ``(hold | rollback | advance, why,
    the numbers it looked at)``.

    Once a step has both its minimum duration and request count, the canary is compared
    with the primary on error rate, p99 latency (a ratio AND an absolute margin), and
    optionally prediction PSI. A clearly broken canary is rolled back without waiting out
    the step.
    """
    stats = variant_stats(store, name, since_ms=ro.step_started_at)
    cand = stats.get(ro.candidate, VariantStats(ro.candidate, 0, 0, None, None))
    if cand.first_at is not None and cand.first_at > ro.step_started_at:
        # Compare from the canary's first answer: before it, replicas were loading it
        # (CPU the primary's requests competed for), which says nothing about either.
        narrowed = variant_stats(store, name, since_ms=cand.first_at)
        if narrowed.get(ro.previous or "") is not None:  # the primary is still compared
            stats = narrowed
            cand = stats.get(ro.candidate, cand)
    prim = stats.get(ro.previous or "", VariantStats(ro.previous or "", 0, 0, None, None))
    info: dict[str, Any] = {"canary": cand.to_dict(), "primary": prim.to_dict(), "step": ro.step}
    elapsed = (time.time() * 1000 - ro.step_started_at) / 1000
    if cand.requests >= min(20, policy.min_requests) and cand.error_rate > prim.error_rate + max(
        policy.max_error_rate_increase, 0.5
    ):
        why = f"canary errors {cand.error_rate:.1%} vs primary {prim.error_rate:.1%}"
        return "rollback", why, info
    if cand.requests < policy.min_requests or elapsed < policy.min_seconds:
        return (
            "hold",
            f"step {ro.step + 1}: {cand.requests}/{policy.min_requests} requests, "
            f"{elapsed:.0f}/{policy.min_seconds:g} s — too little to decide",
            info,
        )
    if cand.error_rate > prim.error_rate + policy.max_error_rate_increase:
        return (
            "rollback",
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
        return (
            "rollback",
            f"canary p99 {fmt_ms(cand.p99_ms)} > {policy.max_p99_ratio:g} x primary "
            f"{fmt_ms(prim.p99_ms)}",
            info,
        )
    if policy.max_prediction_psi is not None:
        value = prediction_psi(store, name, ro.step_started_at, ro.candidate, ro.previous or "")
        info["prediction_psi"] = value
        if value is not None and value > policy.max_prediction_psi:
            return "rollback", f"prediction PSI {value:.3f} > {policy.max_prediction_psi:g}", info
    return (
        "advance",
        f"step {ro.step + 1} healthy: errors {cand.error_rate:.2%} vs {prim.error_rate:.2%}, "
        f"p99 {fmt_ms(cand.p99_ms)} vs {fmt_ms(prim.p99_ms)} over {cand.requests} requests",
        info,
    )


def tick(
    store: SqlServingStore,
    name: str,
    *,
    advance: Callable[[str, dict[str, Any]], EndpointSpec],
    rollback: Callable[[str, dict[str, Any]], None],
) -> Decision:
    """One controller step for the canary of endpoint ``name``: judge it, then hold, or
    ``advance`` it (a step, or at the last one, promote) or ``rollback`` it (each given
    the reason and the figures). A decision another process applied meanwhile (the
    callee's ``Conflict``) is ``none``. See :meth:`milepost.serving.DeploymentService.tick`.
    """
    spec, _ = store.get(name)
    ro = spec.rollout
    if ro is None or ro.kind != "canary" or ro.status != "progressing" or ro.canary is None:
        return Decision("none", "no canary in progress")
    action, reason, info = judge(store, name, ro, ro.canary)
    if action == "hold":
        return Decision("hold", reason, info)
    if action == "rollback":
        return _rolled_back(rollback, reason, info)
    try:
        after = advance(reason, info)
    except Conflict as exc:
        now, _ = store.get(name)
        if now.rollout is None or now.rollout.status != "progressing":
            return Decision("none", f"decided meanwhile: {exc.message}", info)
        # the registry cannot take the version (it moved behind the endpoint's back):
        # the canary cannot complete, so it stops here instead of holding forever
        return _rolled_back(rollback, f"cannot promote: {exc.message}", info)
    action = "promote" if after.rollout and after.rollout.status == "succeeded" else "advance"
    return Decision(action, reason, info)


def _rolled_back(
    rollback: Callable[[str, dict[str, Any]], None], reason: str, info: dict[str, Any]
) -> Decision:
    try:
        rollback(reason, info)
    except Conflict as exc:
        return Decision("none", f"decided meanwhile: {exc.message}", info)
    return Decision("rollback", reason, info)
