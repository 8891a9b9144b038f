"""Milepost: deliver models to production rapidly, reliably and repeatably.

The map::

    milepost.start_run / log_* / flush      track a run (module-level, MLflow-like)
    milepost.Client                         everything by id: experiments, runs, audit
    milepost.configure / load_settings      settings: MILEPOST_* env, milepost.toml, defaults
    milepost.Runtime                        settings + stores + services, for embedding/tests
    milepost.errors                         MilepostError and its children
    milepost.tracking                       Run, Experiment, Metric, RunStatus ...
    milepost.data                           register, get, validate, diff dataset versions
    milepost.features.FeatureStore          one feature definition for training and serving
    milepost.deployments                    endpoints: create, update, advance, rollback
    milepost.governance                     the audit trail and its verification
    milepost.evaluate / audit_fairness      score a model version; audit it across groups
    milepost.step / pipeline                typed steps wired into a pipeline (DAG)
    milepost.run_pipeline                   run one: recorded, cached, resumable
    milepost.pipelines                      PipelineRun, load_pipeline ... (``rt.pipelines``)

Embedded by default: a SQLite file and a directory of artifacts under ``./.milepost``.
Set ``MILEPOST_METADATA_URI`` (PostgreSQL) and ``MILEPOST_ARTIFACT_URI`` (``s3://``) to
scale out.

``import milepost`` is cheap: each name below is imported on first use (PEP 562), so a
script that only reads ``milepost.__version__`` or the CLI's ``--help`` does not load
pandas, DuckDB, SQLAlchemy or the services.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost import data, deployments
    from milepost._client import Client, run_pipeline
    from milepost._context import Runtime, configure, get_runtime, reset
    from milepost._fluent_api import (
        ActiveRun,
        active_run,
        audit_fairness,
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
    from milepost.pipelines import pipeline, step
    from milepost.tracking.models import Run, RunStatus

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Client",
    "MilepostError",
    "Run",
    "RunStatus",
    "Runtime",
    "Settings",
    "__version__",
    "active_run",
    "audit_fairness",
    "configure",
    "data",
    "deployments",
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
    "pipeline",
    "reset",
    "run_pipeline",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]

# Public name -> the module that defines it. A submodule maps to itself.
_LAZY: dict[str, str] = {
    "data": "milepost.data",
    "deployments": "milepost.deployments",
    "Client": "milepost._client",
    "run_pipeline": "milepost._client",
    "Runtime": "milepost._context",
    "configure": "milepost._context",
    "get_runtime": "milepost._context",
    "reset": "milepost._context",
    **dict.fromkeys(
        (
            "ActiveRun",
            "active_run",
            "audit_fairness",
            "end_run",
            "evaluate",
            "flush",
            "load_model",
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
            "set_tag",
            "set_tags",
            "start_run",
        ),
        "milepost._fluent_api",
    ),
    "Settings": "milepost.config",
    "load_settings": "milepost.config",
    "MilepostError": "milepost.errors",
    "pipeline": "milepost.pipelines",
    "step": "milepost.pipelines",
    "Run": "milepost.tracking.models",
    "RunStatus": "milepost.tracking.models",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it as a module attribute."""
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'milepost' has no attribute {name!r}")
    module = importlib.import_module(target)
    value = module if target == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
