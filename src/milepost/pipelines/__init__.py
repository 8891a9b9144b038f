"""Pipelines: typed steps wired into a validated DAG, recorded, cached and resumable, run
locally or on Dask; triggers and the scheduler that launch them.

The map::

    step, pipeline             decorators: a step is a plain typed function; a pipeline
                               wires steps (calls inside it return handles)
    Pipeline, load_pipeline    a pipeline object; load one from its "module:attr" ref
    grid                       every combination of parameter lists, for ``step.map``
    PipelineRun, StepRun       what a run recorded (``rt.pipelines.get_run(run_id)``)
    PipelineSummary            a pipeline as seen in its runs (``list_pipelines()``)
    PlannedStep, StepResult,   the engine/recorder contract (:mod:`.records`)
    OutputRef, Link, Recorder
    Trigger, Firing, Launcher  when to launch a pipeline and each time one fired
                               (``rt.triggers``: :mod:`.triggers`; ``rt.scheduler()``
                               evaluates them: :mod:`.scheduler`)

Run one with ``milepost.run_pipeline(ref_or_pipeline, params)`` or ``milepost pipelines
run module:attr``; the service is ``milepost.get_runtime().pipelines``
(:mod:`milepost.pipelines.service`).
"""

from __future__ import annotations

from milepost.pipelines._trigger_records import Firing, Launcher, Trigger
from milepost.pipelines.dag import Pipeline, grid, load_pipeline, pipeline, step
from milepost.pipelines.models import PipelineRun, PipelineSummary, StepRun
from milepost.pipelines.records import Link, OutputRef, PlannedStep, Recorder, StepResult

__all__ = [
    "Firing",
    "Launcher",
    "Link",
    "OutputRef",
    "Pipeline",
    "PipelineRun",
    "PipelineSummary",
    "PlannedStep",
    "Recorder",
    "StepResult",
    "StepRun",
    "Trigger",
    "grid",
    "load_pipeline",
    "pipeline",
    "step",
]
