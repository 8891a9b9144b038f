"""State the operations tests of the shared suite start from, made embedded.

Both modes share one store, so each test names what it creates uniquely; models are
registered once per module (:func:`register_models`) and endpoints pinned to their
versions, which leaves the registry's stages alone.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from milepost.serving.logger import PredictionLogger, new_request_id
from tests.contract.conftest import FEATURES


def register_models(
    rt: Any, name: str, models: dict[str, Any], frame: pd.DataFrame, kinds: tuple[str, ...]
) -> None:
    """Register one version of ``name`` per entry of ``kinds`` (``good``/``weak``)."""
    for kind in kinds:
        run = rt.tracking.start_run(experiment=f"{name}-training")
        rt.models.log_model(
            run.run_id, models[kind], name=name, input_example=frame[FEATURES].head(3)
        )
        rt.tracking.end_run(run.run_id)


def log_predictions(
    rt: Any,
    endpoint: str,
    variant: str,
    frame: pd.DataFrame,
    *,
    start_ms: int,
    version: int,
    role: str = "primary",
    errors: int = 0,
) -> None:
    """One logged request per row of ``frame``, 1 ms apart from ``start_ms`` (the first
    ``errors`` rows failed), as a replica writes them."""
    logger = PredictionLogger(
        endpoint, rt.settings.home / "predictions", rt.serving.store, interval=3600
    )
    for i, row in enumerate(frame.to_dict("records")):
        logger.append(
            {
                "request_id": new_request_id(start_ms + i),
                "row": 0,
                "ts": start_ms + i,
                "endpoint": endpoint,
                "variant": variant,
                "model": variant.rsplit("-v", 1)[0],
                "version": version,
                "role": role,
                "key": str(i),
                "features": json.dumps(row, default=str),
                "prediction": json.dumps(int(row["age"] > 45)),
                "latency_ms": 1.0 + i % 3,
                "status": "error" if i < errors else "ok",
                "error": "boom" if i < errors else None,
                "probabilities": None,
            }
        )
    logger.close()
