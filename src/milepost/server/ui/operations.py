"""Operations: deployments (each endpoint's variants, traffic split, rollout progress,
per-variant requests, errors and latency, events, a rollback button for approvers) and
monitoring (each monitor's drift and performance over time, its alerts).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from milepost.errors import MilepostError
from milepost.errors import http_status as status_of
from milepost.governance.tokens import Principal
from milepost.server.ui._charts import Series, line_chart
from milepost.server.ui._render import Form, caller, page_router, posted, redirect, render

__all__ = ["router"]

router = page_router()

Caller = Annotated[Principal, Depends(caller)]
#: The window an endpoint's per-variant stats cover, in seconds.
STATS_WINDOW_S = 3600
#: Results a monitor page reads (newest), and lines per chart at most.
MAX_RESULTS, MAX_LINES = 5000, 8


@router.get("/deployments")
def deployments(request: Request, principal: Caller) -> Response:
    """Every endpoint: what it serves, its traffic split and its rollout."""
    rt = request.app.state.rt
    endpoints = []
    for name in rt.serving.list_endpoints():
        spec, revision = rt.serving.get(name)
        endpoints.append({"name": name, "spec": spec, "revision": revision})
    return render(request, "deployments.html", principal, title="Deployments", endpoints=endpoints)


def _endpoint_page(
    request: Request, principal: Principal, name: str, *, status: int = 200, **extra: Any
) -> Response:
    rt = request.app.state.rt
    info = rt.serving.status(name, window_seconds=STATS_WINDOW_S)
    spec, _ = rt.serving.get(name)
    return render(
        request,
        "deployment.html",
        principal,
        status=status,
        title=f"Endpoint {name}",
        name=name,
        info=info,
        spec=spec,
        window_minutes=STATS_WINDOW_S // 60,
        traffic=traffic_shares(spec),
        **extra,
    )


@router.get("/deployments/{name}")
def deployment(request: Request, principal: Caller, name: str, done: str | None = None) -> Response:
    """One endpoint: variants with weights and stats, rollout, registry, events."""
    return _endpoint_page(request, principal, name, done=done == "rolled_back")


@router.post("/deployments/{name}/rollback")
def rollback(request: Request, name: str, form: Annotated[Form, Depends(posted)]) -> Response:
    """Back to the previous version (approver); a refusal is shown on the page."""
    try:
        form.require("approver", "roll back endpoints")
        request.app.state.rt.serving.rollback(
            name, reason=form.get("reason") or "rolled back from the web UI"
        )
    except MilepostError as exc:
        return _endpoint_page(
            request,
            form.principal,
            name,
            status=status_of(exc),
            done=False,
            problem=exc.message,
            problem_hint=exc.hint,
        )
    return redirect(f"/deployments/{name}?done=rolled_back")


@router.get("/monitoring")
def monitoring(request: Request, principal: Caller) -> Response:
    """Every monitor, and the alerts not yet acknowledged."""
    rt = request.app.state.rt
    monitors = sorted(rt.monitors.list(), key=lambda m: m.name)
    open_alerts = rt.monitors.alerts(acknowledged=False, limit=100)
    per_monitor: dict[str, int] = defaultdict(int)
    for alert in open_alerts:
        per_monitor[alert.monitor] += 1
    return render(
        request,
        "monitoring.html",
        principal,
        title="Monitoring",
        monitors=monitors,
        alerts=open_alerts,
        open_count=per_monitor,
    )


@router.get("/monitoring/{name}")
def monitor(request: Request, principal: Caller, name: str) -> Response:
    """One monitor: a chart per metric over time (a line per feature), latest results,
    alerts."""
    rt = request.app.state.rt
    found = rt.monitors.get(name)
    results = rt.monitors.results(name, limit=MAX_RESULTS)
    series: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = defaultdict(dict)
    thresholds: dict[tuple[str, str], float] = {}
    for r in results:
        if r.value is None or r.metric == "rows" or r.status == "error":
            continue
        lines = series[(r.check, r.metric)]
        label = r.feature or r.metric
        if label not in lines and len(lines) >= MAX_LINES:
            continue
        lines.setdefault(label, []).append((float(r.run_at), float(r.value)))
        if r.threshold is not None:
            thresholds[(r.check, r.metric)] = float(r.threshold)
    charts = [
        {
            "check": check,
            "metric": metric,
            "svg": line_chart(
                [Series(label, points) for label, points in sorted(lines.items())],
                title=f"{check}: {metric}",
                x_label="run time (UTC)",
                y_label=metric,
                x_time=True,
                threshold=thresholds.get((check, metric)),
            ),
        }
        for (check, metric), lines in sorted(series.items())
    ]
    latest_run = results[-1].run_id if results else None
    return render(
        request,
        "monitor.html",
        principal,
        title=f"Monitor {name}",
        monitor=found,
        charts=charts,
        latest=[r for r in results if r.run_id == latest_run],
        alerts=rt.monitors.alerts(name, limit=50),
        runs=len({r.run_id for r in results}),
    )


def traffic_shares(spec: Any) -> dict[str, float]:
    """Percent of requests each variant answers (the primary takes what canaries leave;
    a shadow's share is of mirrored requests, answered by nobody)."""
    canaries = sum(v.weight for v in spec.variants if v.role == "canary")
    out = {}
    for v in spec.variants:
        if v.role == "primary":
            out[v.name] = max(0.0, 100.0 - canaries)
        elif v.role == "canary":
            out[v.name] = float(v.weight)
        else:
            out[v.name] = 0.0
    return out
