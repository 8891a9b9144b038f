"""``/api/v1`` routes: pipelines, their runs, and triggers.

Viewers read; members run and resume pipelines and manage and fire triggers.

**What the server runs.** A pipeline runs in the server's process (its steps in the
server's worker processes), so the server loads only what is already installed there: a
``package.module:attr`` reference to an importable module, such as the built-in
retraining template ``milepost.retraining:retrain`` or a project's pipelines installed
with it. A file path, a module the server cannot import, or anything that is not a
``@pipeline`` is refused with a 400 saying so; the server never adds a directory to its
import path for a caller. A trigger's pipeline (run later by the scheduler on the
server's host) follows the same rule. The Dask runner uses the server's own scheduler
setting: an ``address`` is not taken over HTTP.

- ``GET /pipelines``; ``GET /pipelines/runs`` (``pipeline``, ``status``, ``limit``);
  ``GET /pipelines/runs/{run_id}`` (steps and statuses);
  ``GET /pipelines/runs/{run_id}/steps/{step}/logs`` (text).
- ``POST /pipelines/runs``: run to the end (201, the run: ``succeeded`` or ``failed``);
  ``POST /pipelines/runs/{run_id}/resume``.
- ``GET|POST /triggers``, ``GET|DELETE /triggers/{name}``,
  ``POST /triggers/{name}/enable|disable|fire``, ``GET /firings`` (``trigger``,
  ``limit``), ``GET /firings/{firing_id}``; ``GET /scheduler/lease``: which scheduler
  evaluates the triggers (null: none ever ran on this store).
"""

from __future__ import annotations

import importlib.util
import re
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from milepost.pipelines.service import PipelineService
    from milepost.pipelines.triggers import TriggerService

router = APIRouter(tags=["pipelines"])

_REF = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_WHAT_RUNS = (
    "The server runs pipelines installed where it runs: the built-in "
    "milepost.retraining:retrain, or package.module:attr of a module it can import."
)


def servable_ref(ref: Any) -> str:
    """``ref`` if the server may load it: ``package.module:attr`` of a module importable
    from the server's own path (see the module docstring).

    Raises:
        InvalidInput: anything else, saying what the server runs.
    """
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise InvalidInput(
            f"Pipeline reference {str(ref)[:120]!r} is not package.module:attr.",
            hint=_WHAT_RUNS,
        )
    module = ref.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise InvalidInput(
            f"The server cannot import module {module!r} of pipeline {ref!r}.",
            hint=_WHAT_RUNS + " Install the project's package on the server, or run the "
            "pipeline where it is (without MILEPOST_URL).",
        )
    return ref


def _pipelines(request: Request) -> PipelineService:
    pipelines: PipelineService = request.app.state.rt.pipelines
    return pipelines


def _triggers(request: Request) -> TriggerService:
    triggers: TriggerService = request.app.state.rt.triggers
    return triggers


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PipelineRunStart(_Body):
    """Run ``pipeline`` (``package.module:attr``) with ``params`` (values as text are
    converted by each parameter's annotation, as ``--param k=v``)."""

    pipeline: str
    params: dict[str, Any] | None = None
    runner: Literal["local", "dask"] = "local"
    max_workers: int | None = None
    cache: bool = True
    run_id: str | None = None


class PipelineResume(_Body):
    """Run a failed run again as a new run, reusing its succeeded steps."""

    runner: Literal["local", "dask"] | None = None
    max_workers: int | None = None


class TriggerCreate(_Body):
    """A trigger: launch ``pipeline`` with ``params`` on exactly one cause."""

    name: str
    pipeline: str
    params: dict[str, Any] | None = None
    schedule: str | None = None
    on_drift: str | None = None
    on_performance: str | None = None
    on_data: str | None = None
    min_rows: int | None = None
    enabled: bool = True


class TriggerFire(_Body):
    """Fire by hand; the pipeline is launched in a process of its own on the server."""

    reason: str | None = None


@router.get("/pipelines")
def list_pipelines(request: Request) -> dict[str, Any]:
    """Every pipeline that has run: name, ref, run count, latest run."""
    return {"items": [p.to_dict() for p in _pipelines(request).list_pipelines()]}


@router.get("/pipelines/runs")
def list_runs(
    request: Request, pipeline: str | None = None, status: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """Pipeline runs, newest first."""
    found = _pipelines(request).list_runs(pipeline, status=status, limit=limit)
    return {"items": [r.to_dict() for r in found]}


@router.post("/pipelines/runs", status_code=201)
def run_pipeline(request: Request, body: PipelineRunStart) -> dict[str, Any]:
    """Run a pipeline the server can load to the end (a failed step makes a ``failed``
    run, not an error)."""
    run = _pipelines(request).run(
        servable_ref(body.pipeline),
        body.params,
        runner=body.runner,
        max_workers=body.max_workers,
        cache=body.cache,
        run_id=body.run_id,
    )
    return run.to_dict()


@router.get("/pipelines/runs/{run_id}")
def get_run(request: Request, run_id: str) -> dict[str, Any]:
    """A pipeline run with its steps (a unique prefix of the id works too)."""
    return _pipelines(request).get_run(run_id).to_dict()


@router.post("/pipelines/runs/{run_id}/resume", status_code=201)
def resume_run(request: Request, run_id: str, body: PipelineResume | None = None) -> dict[str, Any]:
    """Run a failed run again as a new run, reusing its succeeded and cached steps."""
    pipelines = _pipelines(request)
    servable_ref(pipelines.get_run(run_id).ref)
    body = body or PipelineResume()
    run = pipelines.resume(run_id, runner=body.runner, max_workers=body.max_workers)
    return run.to_dict()


@router.get("/pipelines/runs/{run_id}/steps/{step}/logs", response_class=PlainTextResponse)
def step_logs(request: Request, run_id: str, step: str) -> str:
    """What a step printed and logged ("" when nothing was captured)."""
    return _pipelines(request).logs(run_id, step)


@router.get("/triggers")
def list_triggers(request: Request) -> dict[str, Any]:
    """Every trigger, by name."""
    return {"items": [t.to_dict() for t in _triggers(request).list()]}


@router.post("/triggers", status_code=201)
def add_trigger(request: Request, body: TriggerCreate) -> dict[str, Any]:
    """Add a trigger (checked now; audited)."""
    fields = body.model_dump()
    fields["pipeline"] = servable_ref(fields["pipeline"])
    return _triggers(request).add(fields.pop("name"), fields.pop("pipeline"), **fields).to_dict()


@router.get("/triggers/{name}")
def get_trigger(request: Request, name: str) -> dict[str, Any]:
    """One trigger's definition and cursor."""
    return _triggers(request).get(name).to_dict()


@router.delete("/triggers/{name}", status_code=204)
def remove_trigger(request: Request, name: str, reason: str | None = None) -> None:
    """Delete a trigger and its firings (audited)."""
    _triggers(request).remove(name, reason=reason)


@router.post("/triggers/{name}/enable")
def enable_trigger(request: Request, name: str) -> dict[str, Any]:
    """Evaluate the trigger again, from now on."""
    return _triggers(request).enable(name).to_dict()


@router.post("/triggers/{name}/disable")
def disable_trigger(request: Request, name: str) -> dict[str, Any]:
    """Stop evaluating the trigger."""
    return _triggers(request).disable(name).to_dict()


@router.post("/triggers/{name}/fire")
def fire_trigger(request: Request, name: str, body: TriggerFire | None = None) -> dict[str, Any]:
    """Fire by hand: the pipeline starts in a process of its own on the server."""
    triggers = _triggers(request)
    servable_ref(triggers.get(name).pipeline)
    reason = None if body is None else body.reason
    return triggers.fire(name, reason=reason, launcher="subprocess").to_dict()


@router.get("/firings")
def list_firings(request: Request, trigger: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Firings, newest first, with their pipeline run's status."""
    return {"items": [f.to_dict() for f in _triggers(request).firings(trigger, limit=limit)]}


@router.get("/firings/{firing_id}")
def get_firing(request: Request, firing_id: str) -> dict[str, Any]:
    """One firing."""
    return _triggers(request).get_firing(firing_id).to_dict()


@router.get("/scheduler/lease")
def scheduler_lease(request: Request) -> dict[str, Any] | None:
    """Who holds the scheduler's lease and until when (null: no scheduler ever ran)."""
    lease = request.app.state.rt.triggers.lease()
    return None if lease is None else lease.to_dict()
