"""What the prediction log says about an endpoint's variants over a window.

One place computes per-variant requests, errors and latency (``endpoints show``, the
canary controller and the demo all read :func:`variant_stats`), and one function writes a
latency (:func:`fmt_ms`), so ``p99 2.3 ms`` reads the same everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict, short

if TYPE_CHECKING:
    from milepost.serving.backends.sql import SqlServingStore
    from milepost.serving.spec import CanaryPolicy, Rollout

__all__ = ["Decision", "VariantStats", "fmt_ms", "judge", "prediction_psi", "variant_stats"]


def fmt_ms(value: float | None) -> str:
    """A latency as people read it: ``2.3 ms`` (``-`` when unknown)."""
    return "-" if value is None else f"{value:.1f} ms"


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
        """A JSON-ready dict (with ``error_rate``)."""
        return record_dict(self, extra={"error_rate": self.error_rate})

    def __repr__(self) -> str:
        return (
            f"VariantStats({self.variant}: {self.requests:,} requests, {self.errors} errors, "
            f"p99 {fmt_ms(self.p99_ms)})"
        )


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


def _paths(store: SqlServingStore, name: str, since_ms: int, until_ms: int | None) -> list[Path]:
    return [
        Path(p)
        for p in store.segments(name, since_ms=since_ms, until_ms=until_ms)
        if Path(p).exists()
    ]


def _window(since_ms: int, until_ms: int | None) -> str:
    where = f"ts >= epoch_ms({int(since_ms)})"
    if until_ms is not None:
        where += f" AND ts <= epoch_ms({int(until_ms)})"
    return where


def variant_stats(
    store: SqlServingStore, name: str, *, since_ms: int, until_ms: int | None = None
) -> dict[str, VariantStats]:
    """Per-variant requests, errors and latency from the prediction log in
    ``[since_ms, until_ms]`` (epoch ms; no end: up to now). A request counts once (its
    first row), whatever the number of rows it carried."""
    import duckdb

    from milepost.data._profile import source_sql

    existing = _paths(store, name, since_ms, until_ms)
    if not existing:
        return {}
    con = duckdb.connect()
    try:
        con.execute(
            f"CREATE VIEW log AS SELECT * FROM {source_sql(existing)} "
            f"WHERE {_window(since_ms, until_ms)} AND row = 0"
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


def prediction_psi(
    store: SqlServingStore, name: str, since_ms: int, candidate: str, primary: str
) -> float | None:
    """PSI between the predictions of ``candidate`` and ``primary`` since a moment."""
    import duckdb

    from milepost.data._profile import source_sql
    from milepost.stats import psi

    paths = _paths(store, name, since_ms, None)
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
