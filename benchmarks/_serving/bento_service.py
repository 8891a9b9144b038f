"""The benchmark's pipeline as a BentoML service (1.4 API); runs in ``.venv-bentoml``.

``bentoml serve bento_service:ChurnService --host 127.0.0.1 --port P`` from this
directory, with ``SERVING_BENCH_PIPELINE`` naming the pickle. One worker.
``POST /predict`` takes ``{"rows": [{...}]}`` and answers the list of predictions.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import bentoml
import pandas as pd


@bentoml.service(workers=1)
class ChurnService:
    """Loads the pipeline once per worker."""

    def __init__(self) -> None:
        with open(os.environ["SERVING_BENCH_PIPELINE"], "rb") as fh:
            self.pipeline = pickle.load(fh)  # noqa: S301 - our own file

    @bentoml.api
    def predict(self, rows: list[dict[str, Any]]) -> list[int]:
        """Predictions for the rows."""
        return [int(p) for p in self.pipeline.predict(pd.DataFrame(rows))]
