"""What the prediction log says about an endpoint's variants over a window.

One place computes per-variant requests, errors and latency (``deploy status``, the
canary controller and the demo all read :func:`variant_stats`), and one function writes a
latency (:func:`fmt_ms`), so ``p99 2.3 ms`` reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost.serving.backends.sql import SqlServingStore

__all__ = ["Decision", "VariantStats", "fmt_ms", "prediction_psi", "variant_stats"]


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
