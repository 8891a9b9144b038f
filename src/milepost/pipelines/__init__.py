"""Pipelines: typed steps wired into a validated DAG, recorded, cached and resumable, run
locally or on Dask; triggers and the scheduler that launch them.
"""

from __future__ import annotations

from milepost.pipelines.records import Link, OutputRef, PlannedStep, Recorder, StepResult

__all__ = ["Link", "OutputRef", "PlannedStep", "Recorder", "StepResult"]
