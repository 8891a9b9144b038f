"""A minimal FastAPI model server: a pydantic body, ``pipeline.predict`` on a DataFrame.

Served by ``uvicorn fastapi_app:app`` (one worker) from Milepost's environment (the same
uvicorn, uvloop and httptools as ``milepost serve``). The pipeline is the pickle named by
``SERVING_BENCH_PIPELINE``. ``POST /predict`` takes ``{"rows": [{...}]}``; ``GET /ready``.
The handler is ``async def``: with one worker and a CPU-bound predict, that is faster
than a ``def`` handler, which FastAPI runs in a thread pool (a strong baseline).
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

with open(os.environ["SERVING_BENCH_PIPELINE"], "rb") as fh:
    PIPELINE = pickle.load(fh)  # noqa: S301 - our own file

app = FastAPI()


class PredictRequest(BaseModel):
    """The request body."""

    rows: list[dict[str, Any]]


@app.post("/predict")
async def predict(request: PredictRequest) -> dict[str, list[Any]]:
    """Predictions for the rows."""
    return {"predictions": PIPELINE.predict(pd.DataFrame(request.rows)).tolist()}


@app.get("/ready")
async def ready() -> dict[str, bool]:
    """Readiness."""
    return {"ready": True}
