"""Experiment tracking: experiments, runs, params, metrics, tags and artifacts."""

from milepost.tracking.models import (
    ArtifactInfo,
    Environment,
    Experiment,
    Metric,
    PagedList,
    Run,
    RunStatus,
)
from milepost.tracking.service import TrackingService

__all__ = [
    "ArtifactInfo",
    "Environment",
    "Experiment",
    "Metric",
    "PagedList",
    "Run",
    "RunStatus",
    "TrackingService",
]
