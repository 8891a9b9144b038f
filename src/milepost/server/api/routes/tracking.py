"""``/api/v1`` routes: experiments, runs, params, tags, metrics and the run environment.

Thin: each handler parses, checks the token's project scope, calls ``rt.tracking`` and
answers the record's ``to_dict()``. The remote client (:mod:`milepost.client.tracking`)
is the main caller; the web UI reads the same routes.

Project scope: a token created with ``--project NAME`` may touch only the experiment
named NAME and its runs; anything else is refused with 403 (:func:`scope_run`,
:func:`scope_experiment`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from milepost.errors import InvalidInput, NotFound, PermissionDenied
from milepost.server.api.auth import principal_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from milepost.tracking.models import Experiment
    from milepost.tracking.service import TrackingService

router = APIRouter(tags=["tracking"])

__all__ = ["router", "scope_experiment", "scope_run"]


def _tracking(request: Request) -> TrackingService:
    return request.app.state.rt.tracking  # type: ignore[no-any-return]


def _project(request: Request) -> str | None:
    principal = principal_of(request)
    return principal.project if principal is not None else None


def _out_of_scope(project: str, what: str) -> PermissionDenied:
    return PermissionDenied(
        f"This token is limited to project {project!r}; {what} is outside it.",
        hint="Use a token without a project, or one created for that project.",
        details={"project": project},
    )


def scope_experiment(request: Request, experiment: Experiment) -> Experiment:
    """Refuse (403) an experiment outside the token's project."""
    project = _project(request)
    if project is not None and experiment.name != project:
        raise _out_of_scope(project, f"experiment {experiment.name!r}")
    return experiment


def scope_name(request: Request, name: str | int | None) -> None:
    """Refuse (403) naming an experiment other than the token's project."""
    project = _project(request)
    if project is None:
        return
    if name is None:
        raise _out_of_scope(project, "the default experiment")
    if isinstance(name, int) or (name.isascii() and name.isdigit()):  # maybe an id
        scope_experiment(request, _tracking(request).get_experiment(name))
    elif name != project:
        raise _out_of_scope(project, f"experiment {name!r}")


def scope_run(request: Request, run_ids: str | Iterable[str]) -> None:
    """Refuse (403) runs outside the token's project (unknown runs pass: the service
    answers them with 404)."""
    project = _project(request)
    if project is None:
        return
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    tracking = _tracking(request)
    known = tracking.store.run_experiments(ids)
    for exp_id in {found[0] for found in known.values()}:
        experiment = tracking.get_experiment(exp_id)
        if experiment.name != project:
            raise _out_of_scope(project, f"a run of experiment {experiment.name!r}")


def _experiment(request: Request, ref: str, by: str | None) -> Experiment:
    found = _tracking(request).get_experiment(_ref(ref, by))
    return scope_experiment(request, found)


def _ref(ref: str, by: str | None) -> str | int:
    if by == "id":
        if not (ref.isascii() and ref.isdigit()):
            raise NotFound(f"Experiment id {ref!r} does not exist: ids are whole numbers.")
        return int(ref)
    return ref


ByQuery = Annotated[
    str | None,
    Query(pattern="^(id|name)$", description="'id' when the reference is an experiment id."),
]


_SPECIAL = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf}


def wire_float(value: float | str) -> float:
    """A metric value off the wire: a number, or NaN and infinities spelled as strings."""
    if isinstance(value, str):
        special = _SPECIAL.get(value.lower())
        if special is None:
            raise InvalidInput(
                f"Metric value {value[:40]!r} is not a number.",
                hint="Send numbers, or the strings 'NaN', 'Infinity', '-Infinity'.",
            )
        return special
    return value


# -- experiments --------------------------------------------------------------------


class NewExperiment(BaseModel):
    """``POST /experiments``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str | None = None
    get_or_create: bool = Field(False, description="Answer the existing one instead of 409.")


class ExperimentChange(BaseModel):
    """``PATCH /experiments/{ref}``: rename."""

    model_config = ConfigDict(extra="forbid")
    name: str


@router.get("/experiments")
def list_experiments(request: Request, include_deleted: bool = False) -> dict[str, Any]:
    """Experiments, oldest first (only the token's project with a project token)."""
    found = _tracking(request).list_experiments(include_deleted=include_deleted)
    project = _project(request)
    if project is not None:
        found = [e for e in found if e.name == project]
    return {"items": [e.to_dict() for e in found]}


@router.post("/experiments", status_code=201)
def create_experiment(request: Request, body: NewExperiment) -> dict[str, Any]:
    """Create an experiment (409 when the name is taken, unless ``get_or_create``)."""
    _only_project(request, body.name)
    tracking = _tracking(request)
    if body.get_or_create:
        return tracking.get_or_create_experiment(body.name).to_dict()
    return tracking.create_experiment(body.name, description=body.description).to_dict()


def _only_project(request: Request, name: str) -> None:
    project = _project(request)
    if project is not None and name != project:
        raise _out_of_scope(project, f"experiment {name!r}")


@router.get("/experiments/{ref:path}")
def get_experiment(request: Request, ref: str, by: ByQuery = None) -> dict[str, Any]:
    """An experiment by name, or by id with ``?by=id``."""
    return _experiment(request, ref, by).to_dict()


@router.patch("/experiments/{ref:path}")
def rename_experiment(
    request: Request, ref: str, body: ExperimentChange, by: ByQuery = None
) -> dict[str, Any]:
    """Rename an experiment (audited)."""
    experiment = _experiment(request, ref, by)
    _only_project(request, body.name)
    return _tracking(request).rename_experiment(experiment.experiment_id, body.name).to_dict()


@router.delete("/experiments/{ref:path}")
def delete_experiment(
    request: Request, ref: str, by: ByQuery = None, reason: str | None = None
) -> dict[str, Any]:
    """Soft-delete an experiment (audited; its runs stay readable)."""
    experiment = _experiment(request, ref, by)
    return _tracking(request).delete_experiment(experiment.experiment_id, reason=reason).to_dict()


@router.post("/experiments/{ref:path}/restore")
def restore_experiment(request: Request, ref: str, by: ByQuery = None) -> dict[str, Any]:
    """Undo a delete (audited)."""
    experiment = _experiment(request, ref, by)
    return _tracking(request).restore_experiment(experiment.experiment_id).to_dict()


# -- runs -----------------------------------------------------------------------------


class Origin(BaseModel):
    """The remote client's process: recorded on the run as embedded mode records its own."""

    model_config = ConfigDict(extra="forbid")
    python_version: str = Field(max_length=64)
    platform: str = Field(max_length=512)
    packages: list[str] = Field(max_length=20_000)
    source: str = Field(max_length=4096)
    host: str = Field(max_length=256)
    pid: int = Field(ge=0, le=2**31 - 1)
    started: float = Field(ge=0, le=1e11, allow_inf_nan=False)
    git_root: str | None = Field(None, max_length=4096)
    git_commit: str | None = Field(None, max_length=64)
    git_dirty: bool | None = None


class NewRun(BaseModel):
    """``POST /runs``: start a run."""

    model_config = ConfigDict(extra="forbid")
    experiment: str | int | None = None
    run_name: str | None = None
    tags: dict[str, Any] | None = None
    parent_run_id: str | None = None
    origin: Origin | None = None


class EndRun(BaseModel):
    """``POST /runs/{run_id}/end``."""

    model_config = ConfigDict(extra="forbid")
    status: str = "FINISHED"
    error: str | None = None


class Values(BaseModel):
    """Params or tags: ``{"values": {key: value}}``."""

    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any]


class MetricBatch(BaseModel):
    """``POST /metrics``: many metric values, of any runs, written in one transaction.

    Each row is ``[run_id, key, value, timestamp_ms, step]``; a value may be the strings
    ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (JSON has no such numbers).
    """

    model_config = ConfigDict(extra="forbid")
    metrics: list[tuple[str, str, float | str, int, int]] = Field(max_length=100_000)


class RunBatch(BaseModel):
    """``POST /runs/{run_id}/batch``: params, tags and metrics of one run in one call
    (as MLflow's log-batch)."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None
    metrics: list[tuple[str, float | str, int, int]] | None = Field(
        None, max_length=100_000, description="[key, value, timestamp_ms, step] rows."
    )


class Heartbeat(BaseModel):
    """``POST /runs/heartbeat``: the remote owner of these runs is alive."""

    model_config = ConfigDict(extra="forbid")
    run_ids: list[str] = Field(max_length=10_000)


class Reap(BaseModel):
    """``POST /runs/reap``."""

    model_config = ConfigDict(extra="forbid")
    experiments: list[str | int] | None = None
    run_ids: list[str] | None = None
    dry_run: bool = False


@router.post("/runs", status_code=201)
def start_run(request: Request, body: NewRun) -> dict[str, Any]:
    """Start a RUNNING run (owned by the calling client when ``origin`` is given)."""
    from milepost.tracking.environment import GitInfo, ProcessInfo, RunOrigin, environment_of

    tracking = _tracking(request)
    experiment = body.experiment
    if experiment is None and _project(request) is not None:
        experiment = tracking.settings.experiment
    scope_name(request, experiment)
    if body.parent_run_id is not None:
        scope_run(request, body.parent_run_id)
    origin = None
    if body.origin is not None:
        o = body.origin
        git = (
            GitInfo(o.git_root, o.git_commit, bool(o.git_dirty))
            if o.git_root and o.git_commit
            else None
        )
        origin = RunOrigin(
            environment_of(o.python_version, o.platform, o.packages),
            git,
            ProcessInfo(o.host, o.pid, o.started),
            o.source,
            local=False,
        )
    run = tracking.start_run(
        experiment=experiment,
        run_name=body.run_name,
        tags=body.tags,
        parent_run_id=body.parent_run_id,
        origin=origin,
    )
    return run.to_dict()


@router.get("/runs")
def search_runs(
    request: Request,
    experiment: Annotated[list[str] | None, Query(description="Name; repeatable.")] = None,
    experiment_id: Annotated[list[int] | None, Query(description="Id; repeatable.")] = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: int = 100,
    page_token: str | None = None,
    include_deleted: bool = False,
) -> dict[str, Any]:
    """Runs matching ``filter`` in ``order_by`` order, one page at a time (server-side)."""
    refs: list[str | int] | None = None
    if experiment or experiment_id:
        refs = [*(experiment or []), *(experiment_id or [])]
    project = _project(request)
    if project is not None:
        if refs is None:
            refs = [project]
        for ref in refs:
            scope_name(request, ref)
    page = _tracking(request).search_runs(
        refs,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        include_deleted=include_deleted,
    )
    return {"items": [r.to_dict() for r in page], "next_page_token": page.token}


@router.post("/runs/heartbeat", status_code=204)
def heartbeat(request: Request, body: Heartbeat) -> None:
    """Record that the owner of these RUNNING runs is alive."""
    scope_run(request, body.run_ids)
    _tracking(request).heartbeat(body.run_ids)


@router.post("/runs/reap")
def reap_stale_runs(request: Request, body: Reap) -> dict[str, Any]:
    """Mark KILLED the RUNNING runs whose owner is gone (audited)."""
    experiments = body.experiments
    project = _project(request)
    if project is not None:
        experiments = experiments or [project]
        for ref in experiments:
            scope_name(request, ref)
    if body.run_ids:
        scope_run(request, body.run_ids)
    stale = _tracking(request).reap_stale_runs(
        experiments, run_ids=body.run_ids, dry_run=body.dry_run
    )
    return {"items": [s.to_dict() for s in stale]}


@router.get("/runs/{run_id}")
def get_run(request: Request, run_id: str) -> dict[str, Any]:
    """A run with its params, latest metrics and tags."""
    scope_run(request, run_id)
    return _tracking(request).get_run(run_id).to_dict()


@router.get("/runs/{run_id}/state")
def run_state(request: Request, run_id: str) -> dict[str, Any]:
    """A run's experiment, status and lifecycle stage (cheap: no params or metrics)."""
    from milepost import _validate as check

    scope_run(request, run_id)
    found = _tracking(request).store.run_experiments([check.run_id(run_id)]).get(run_id)
    if found is None:
        raise NotFound(
            f"Run {run_id!r} does not exist.", hint="Find run ids with `milepost runs list`."
        )
    return {"experiment_id": found[0], "status": found[1], "lifecycle_stage": found[2]}


@router.post("/runs/{run_id}/end")
def end_run(request: Request, run_id: str, body: EndRun) -> dict[str, Any]:
    """Give a run its terminal status (audited); answers the run."""
    scope_run(request, run_id)
    tracking = _tracking(request)
    tracking.end_run(run_id, body.status, error=body.error)
    return tracking.get_run(run_id).to_dict()


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(request: Request, run_id: str) -> None:
    """Soft-delete a run (audited)."""
    scope_run(request, run_id)
    _tracking(request).delete_run(run_id)


@router.post("/runs/{run_id}/restore", status_code=204)
def restore_run(request: Request, run_id: str) -> None:
    """Undo a delete (audited)."""
    scope_run(request, run_id)
    _tracking(request).restore_run(run_id)


@router.post("/runs/{run_id}/params", status_code=204)
def log_params(request: Request, run_id: str, body: Values) -> None:
    """Log params (immutable: another value for a logged key is 409)."""
    scope_run(request, run_id)
    _tracking(request).log_params(run_id, body.values)


@router.post("/runs/{run_id}/tags", status_code=204)
def set_tags(request: Request, run_id: str, body: Values) -> None:
    """Set tags."""
    scope_run(request, run_id)
    _tracking(request).set_tags(run_id, body.values)


@router.delete("/runs/{run_id}/tags/{key:path}", status_code=204)
def delete_tag(request: Request, run_id: str, key: str) -> None:
    """Remove a tag (404 when it is not set)."""
    scope_run(request, run_id)
    _tracking(request).delete_tag(run_id, key)


@router.post("/runs/{run_id}/batch")
def log_batch(request: Request, run_id: str, body: RunBatch) -> dict[str, Any]:
    """Params, tags and metrics of one run in one call; metrics are durable on return.

    Params are checked (and logged) first, then tags, then metrics, as
    ``Client.log_batch`` does.
    """
    scope_run(request, run_id)
    tracking = _tracking(request)
    tracking.get_run(run_id)
    if body.params:
        tracking.log_params(run_id, body.params)
    if body.tags:
        tracking.set_tags(run_id, body.tags)
    dropped = 0
    if body.metrics:
        dropped = tracking.write_metrics(
            [(run_id, k, wire_float(v), t, s) for k, v, t, s in body.metrics]
        )
    return {"dropped": dropped}


@router.post("/metrics")
def log_metrics(request: Request, body: MetricBatch) -> dict[str, Any]:
    """Many metric values of any runs in one transaction, durable on return (the remote
    client's batched ``log_metric``). Values of unknown runs, and values the database
    refuses, are dropped and counted (``dropped``; refusals also on their run's tags)."""
    scope_run(request, {row[0] for row in body.metrics})
    rows = [(r, k, wire_float(v), t, s) for r, k, v, t, s in body.metrics]
    return {"dropped": _tracking(request).write_metrics(rows)}


@router.get("/runs/{run_id}/metrics/{key:path}")
def metric_history(request: Request, run_id: str, key: str) -> dict[str, Any]:
    """Every logged value of one metric, by step and time."""
    scope_run(request, run_id)
    return {"items": [m.to_dict() for m in _tracking(request).get_metric_history(run_id, key)]}


@router.get("/environments/{env_hash}")
def get_environment(request: Request, env_hash: str) -> dict[str, Any]:
    """The environment (Python, platform, packages) runs recorded."""
    return _tracking(request).get_environment(env_hash).to_dict()
