"""Milepost: deliver models to production rapidly, reliably and repeatably.

The map::

    milepost.start_run / log_* / flush      track a run (module-level, MLflow-like)
    milepost.Client                         everything by id: experiments, runs, audit
    milepost.configure / load_settings      settings: MILEPOST_* env, milepost.toml, defaults
    milepost.errors                         MilepostError and its children
    milepost.tracking                       Run, Experiment, Metric, RunStatus ...
    milepost.governance                     the audit trail and its verification

Embedded by default: a SQLite file and a directory of artifacts under ``./.milepost``.
Set ``MILEPOST_METADATA_URI`` (PostgreSQL) and ``MILEPOST_ARTIFACT_URI`` (``s3://``) to
scale out.
"""

from milepost import data
from milepost._client import Client
from milepost._context import configure, get_runtime, reset
from milepost._fluent_api import (
    ActiveRun,
    active_run,
    end_run,
    evaluate,
    flush,
    load_model,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_input,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    log_text,
    set_tag,
    set_tags,
    start_run,
)
from milepost.config import Settings, load_settings
from milepost.errors import MilepostError
from milepost.tracking.models import Run, RunStatus

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Client",
    "MilepostError",
    "Run",
    "RunStatus",
    "Settings",
    "__version__",
    "active_run",
    "configure",
    "data",
    "end_run",
    "evaluate",
    "flush",
    "get_runtime",
    "load_model",
    "load_settings",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "reset",
    "set_tag",
    "set_tags",
    "start_run",
]
