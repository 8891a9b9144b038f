"""The catalogue: datasets (versions, schema, column profiles, validation results),
feature views and their versions, the lineage graph of anything, and the audit log
(filtered and paged on the server).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from milepost.errors import InvalidInput, MilepostError
from milepost.governance.lineage_html import lineage_svg
from milepost.governance.tokens import Principal
from milepost.server.ui._render import caller, page_router, render

__all__ = ["router"]

router = page_router()

Caller = Annotated[Principal, Depends(caller)]
#: Audit events per page (the default first), and validation results per version.
AUDIT_SIZES, VALIDATIONS = (100, 50, 500), 20
#: The deepest a lineage page walks (edges from the root).
MAX_DEPTH = 6


@router.get("/data")
def datasets(request: Request, principal: Caller) -> Response:
    """Every dataset with its newest version."""
    rows = sorted(request.app.state.rt.data.list_datasets(), key=lambda d: d.name.lower())
    return render(request, "datasets.html", principal, title="Data", datasets=rows)


@router.get("/data/{name}")
def dataset(request: Request, principal: Caller, name: str, version: int | None = None) -> Response:
    """A dataset's versions; one version's schema, profile and validation results."""
    rt = request.app.state.rt
    versions = sorted(rt.data.versions(name), key=lambda v: -v.version)
    if not versions:
        raise InvalidInput(f"Dataset {name!r} has no versions.")
    shown = versions[0] if version is None else rt.data.get(f"{name}@{version}")
    return render(
        request,
        "dataset.html",
        principal,
        title=f"Dataset {name}",
        name=name,
        versions=versions,
        shown=shown,
        validations=rt.data.validations(shown, limit=VALIDATIONS),
        used_by=rt.data.runs_using(shown),
    )


@router.get("/features")
def features(request: Request, principal: Caller) -> Response:
    """Feature views, every version, and what the online store holds of each."""
    rt = request.app.state.rt
    records = sorted(rt.features.records(fresh=True), key=lambda r: (r.name, -r.version))
    coverage: dict[str, str] = {}
    try:
        for c in rt.features.online_status(records):
            coverage[c.view] = c.describe()
    except MilepostError as exc:  # an unreachable online store is not the page's failure
        coverage = {"": f"online store unavailable: {exc.message}"}
    views: dict[str, list[Any]] = {}
    for r in records:
        views.setdefault(r.name, []).append(r)
    return render(
        request,
        "features.html",
        principal,
        title="Features",
        views=views,
        coverage=coverage,
        online_problem=coverage.get(""),
    )


@router.get("/lineage")
def lineage(
    request: Request,
    principal: Caller,
    ref: str | None = None,
    direction: str = "both",
    depth: Annotated[int | None, Query(ge=0, le=MAX_DEPTH)] = None,
) -> Response:
    """The lineage graph around ``ref`` (a model version, run, dataset, endpoint, ...)."""
    rt = request.app.state.rt
    graph = svg = None
    problem = None
    if ref:
        try:
            graph = rt.lineage.graph(ref.strip(), direction=direction, depth=depth)
            svg = lineage_svg(graph)
        except MilepostError as exc:
            problem = exc.message if exc.hint is None else f"{exc.message} {exc.hint}"
    models = rt.models.list_models()
    starts = [
        (f"models:/{m.name}/{m.latest_version}", f"{m.name} v{m.latest_version}")
        for m in models
        if m.latest_version
    ][:10]
    starts += [(f"endpoints:/{e}", f"endpoint {e}") for e in rt.serving.list_endpoints()[:10]]
    return render(
        request,
        "lineage.html",
        principal,
        status=400 if problem else 200,
        title="Lineage",
        ref=ref or "",
        direction=direction,
        depth=depth,
        graph=graph,
        lineage_svg=svg,
        problem=problem,
        starts=starts,
    )


@router.get("/audit")
def audit(
    request: Request,
    principal: Caller,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    before_ms: Annotated[int | None, Query(ge=0)] = None,
    size: Annotated[int, Query(ge=1, le=max(AUDIT_SIZES))] = AUDIT_SIZES[0],
) -> Response:
    """The audit trail, newest first, filtered; "older" pages continue by time and
    sequence, so events that share a millisecond are neither lost nor repeated."""
    filters = {
        "actor": actor or None,
        "action": action or None,
        "object_type": object_type or None,
        "object_id": object_id or None,
    }
    problem = None
    events: list[Any] = []
    more = False
    try:
        if before_seq is not None and before_ms is not None:
            # everything at or before that ms, skipping what the last page showed
            found = request.app.state.rt.audit.list(
                **filters, until_ms=before_ms + 1, limit=size + 1 + _SAME_MS_SLACK
            )
            found = [e for e in found if e.seq < before_seq]
        else:
            found = request.app.state.rt.audit.list(**filters, limit=size + 1)
        events, more = found[:size], len(found) > size
    except MilepostError as exc:
        problem = exc.message if exc.hint is None else f"{exc.message} {exc.hint}"
    params = {**filters, "size": size if size != AUDIT_SIZES[0] else None}
    return render(
        request,
        "audit.html",
        principal,
        status=400 if problem else 200,
        title="Audit log",
        events=events,
        more=more,
        params=params,
        problem=problem,
        sizes=AUDIT_SIZES,
    )


#: Extra events fetched past a page's start, for events sharing its first millisecond.
_SAME_MS_SLACK = 1000
