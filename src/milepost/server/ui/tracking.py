"""Experiments and runs: the experiments list, an experiment's runs table (filter, sort
and paging done by :meth:`~milepost.tracking.TrackingService.search_runs`, one page at a
time, so 100k runs cost what 50 do), a run's page (params, a chart per metric over its
steps, artifacts, environment, inputs) and several runs side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from milepost.errors import InvalidFilter, InvalidInput, MilepostError, NotFound
from milepost.governance.tokens import Principal
from milepost.server.ui._charts import Series, line_chart
from milepost.server.ui._render import caller, page_router, query, redirect, render

__all__ = ["router"]

router = page_router()

Caller = Annotated[Principal, Depends(caller)]
#: Page sizes a runs table offers (the default first).
PAGE_SIZES = (50, 100, 200, 500)
#: Metric and param columns a runs table shows at most (the rest are on the run page).
METRIC_COLUMNS, PARAM_COLUMNS = 8, 5
#: Metric charts a run page draws at most; compare shows at most this many runs.
MAX_CHARTS, MAX_COMPARE = 24, 10
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")


def field_name(kind: str, key: str) -> str:
    """``metrics.KEY`` for the filter and order language, quoted when it needs it."""
    return f"{kind}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{kind}.`{key}`"


@router.get("/")
def home(principal: Caller) -> Response:
    """Start at the experiments."""
    return redirect("/experiments")


@router.get("/experiments")
def experiments(request: Request, principal: Caller) -> Response:
    """Every active experiment."""
    rt = request.app.state.rt
    found = sorted(rt.tracking.list_experiments(), key=lambda e: e.name.lower())
    return render(request, "experiments.html", principal, title="Experiments", experiments=found)


@router.get("/experiments/{experiment_id}")
def runs_table(
    request: Request,
    principal: Caller,
    experiment_id: int,
    filter: str | None = None,
    order_by: str | None = None,
    page: str | None = None,
    size: Annotated[int, Query(ge=1, le=PAGE_SIZES[-1])] = PAGE_SIZES[0],
    n: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """One page of an experiment's runs, filtered and sorted by the server."""
    rt = request.app.state.rt
    experiment = rt.tracking.get_experiment(experiment_id)
    problem = None
    try:
        found = rt.tracking.search_runs(
            experiment.experiment_id,
            filter=filter or None,
            order_by=order_by or None,
            max_results=size,
            page_token=page or None,
        )
    except (InvalidFilter, InvalidInput) as exc:
        problem = exc.message if exc.hint is None else f"{exc.message} {exc.hint}"
        found = rt.tracking.search_runs(experiment.experiment_id, max_results=size)
    metric_keys = _columns([r.metrics for r in found], METRIC_COLUMNS, order_by, "metrics")
    param_keys = _columns([r.params for r in found], PARAM_COLUMNS, order_by, "params")
    params = {
        "filter": filter,
        "order_by": order_by,
        "size": size if size != PAGE_SIZES[0] else None,
    }
    return render(
        request,
        "runs.html",
        principal,
        status=400 if problem else 200,
        title=f"Runs of {experiment.name}",
        experiment=experiment,
        runs=list(found),
        next_page=found.token,
        page_number=n,
        params=params,
        problem=problem,
        metric_keys=metric_keys,
        param_keys=param_keys,
        field_name=field_name,
        sort_link=lambda field: _sort_link(request.url.path, params, field),
        sorted_by=_sorted_by(order_by),
        sizes=PAGE_SIZES,
    )


def _columns(values: list[dict[str, Any]], limit: int, order: str | None, kind: str) -> list[str]:
    """The keys the page's runs have, the one sorted by first, then alphabetically."""
    keys = sorted({k for v in values for k in v})
    by = _sorted_by(order)[0]
    first = [k for k in keys if field_name(kind, k) == by]
    return (first + [k for k in keys if k not in first])[:limit]


def _sorted_by(order: str | None) -> tuple[str | None, bool]:
    """``(field, descending)`` of the table's (first) order term."""
    if not order:
        return None, True
    term = order.split(",")[0].strip()
    upper = term.upper()
    if upper.endswith(" DESC"):
        return term[:-5].strip(), True
    if upper.endswith(" ASC"):
        return term[:-4].strip(), False
    return term, False


def _sort_link(path: str, params: dict[str, Any], field: str) -> str:
    """The column's link: sort by it descending, or flip it when it already sorts."""
    by, descending = _sorted_by(params.get("order_by"))
    direction = "ASC" if by == field and descending else "DESC"
    return query(path, params, order_by=f"{field} {direction}", page=None, n=None)


@router.get("/runs/{run_id}")
def run_page(request: Request, principal: Caller, run_id: str) -> Response:
    """One run: params, metric charts, artifacts, environment, inputs, what it made."""
    rt = request.app.state.rt
    run = rt.tracking.get_run(run_id)
    experiment = rt.tracking.get_experiment(run.experiment_id)
    charts: list[dict[str, Any]] = []
    for key in sorted(run.metrics):
        if len(charts) == MAX_CHARTS:
            break
        points = [
            (float(m.step), float(m.value)) for m in rt.tracking.get_metric_history(run.run_id, key)
        ]
        if len(points) < 2:  # a single value is in the table; a chart adds nothing
            continue
        charts.append(
            {
                "key": key,
                "points": len(points),
                "svg": line_chart([Series(key, points)], title=key, x_label="step", y_label=key),
            }
        )
    environment = None
    if run.env_hash:
        try:
            environment = rt.tracking.get_environment(run.env_hash)
        except NotFound:
            environment = None
    inputs = rt.data.inputs_of_run(run.run_id)
    features, made = _lineage_of_run(rt, run.run_id)
    return render(
        request,
        "run.html",
        principal,
        title=f"Run {run.name}",
        run=run,
        experiment=experiment,
        charts=charts,
        more_metrics=len(charts) == MAX_CHARTS,
        artifacts=rt.tracking.list_artifacts(run.run_id),
        environment=environment,
        inputs=inputs,
        features=features,
        made=made,
    )


def _lineage_of_run(rt: Any, run_id: str) -> tuple[list[Any], list[Any]]:
    """The feature view versions a run read and what it made (models, datasets)."""
    try:
        graph = rt.lineage.graph(f"run:{run_id}", depth=1)
    except MilepostError:
        return [], []
    root = f"run:{run_id}"
    sources = {e.source for e in graph.edges if e.target == root}
    targets = {e.target for e in graph.edges if e.source == root}
    features = [n for n in graph.nodes if n.key in sources and n.kind == "feature_view_version"]
    made = [n for n in graph.nodes if n.key in targets]
    return features, made


@router.get("/runs/{run_id}/artifacts/{path:path}")
def artifact(request: Request, principal: Caller, run_id: str, path: str) -> Response:
    """Download one artifact file, streamed from the blob store (as an attachment: never
    rendered as a page). A path outside the run's artifacts is refused by the service."""
    rt = request.app.state.rt
    found = [a for a in rt.tracking.list_artifacts(run_id, path) if a.path == path.strip("/")]
    if not found:
        raise NotFound(f"Run {run_id} has no artifact {path!r}.")
    reader = rt.blobs.open(found[0].digest)  # verified as it is read to the end

    def chunks() -> Iterator[bytes]:
        with reader:
            while chunk := reader.read(_CHUNK):
                yield chunk

    filename = found[0].path.rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(found[0].size),
        },
    )


#: Bytes per chunk of a streamed download.
_CHUNK = 1 << 16


@router.get("/compare")
def compare(
    request: Request,
    principal: Caller,
    run: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Several runs side by side: params and metrics in columns, one overlaid chart per
    metric they share."""
    ids = list(dict.fromkeys(run or []))
    if not ids:
        raise InvalidInput(
            "Pick the runs to compare.",
            hint="Tick two or more runs in an experiment's table, then Compare.",
        )
    if len(ids) > MAX_COMPARE:
        raise InvalidInput(
            f"{len(ids)} runs picked; compare at most {MAX_COMPARE} at a time.",
            hint="Untick some runs.",
        )
    rt = request.app.state.rt
    runs = [rt.tracking.get_run(i) for i in ids]
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    charts: list[dict[str, Any]] = []
    for key in metric_keys:
        series = [
            Series(
                f"{r.name} ({r.run_id[:8]})",
                [
                    (float(m.step), float(m.value))
                    for m in rt.tracking.get_metric_history(r.run_id, key)
                ],
            )
            for r in runs
            if key in r.metrics
        ]
        if all(len(s.points) < 2 for s in series):  # latest values are in the table
            continue
        charts.append(
            {"key": key, "svg": line_chart(series, title=key, x_label="step", y_label=key)}
        )
        if len(charts) == MAX_CHARTS:
            break
    return render(
        request,
        "compare.html",
        principal,
        title=f"Compare {len(runs)} runs",
        runs=runs,
        metric_rows=_rows([r.metrics for r in runs], metric_keys),
        param_rows=_rows([r.params for r in runs], param_keys),
        charts=charts,
    )


def _rows(values: list[dict[str, Any]], keys: list[str]) -> list[tuple[str, list[Any], bool]]:
    """``(key, value per run, whether they differ)`` for a side-by-side table."""
    out = []
    for key in keys:
        row = [v.get(key) for v in values]
        out.append((key, row, len({repr(x) for x in row}) > 1))
    return out
