"""The evaluation record the store returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milepost._records import record_dict

__all__ = ["EvaluationResult"]


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """Metrics of one model version on one piece of data."""

    eval_id: str
    model_uri: str
    dataset_ref: str | None
    task: str
    target: str
    num_rows: int
    metrics: dict[str, float | None]
    slices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    created_by: str = ""
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``model`` and ``dataset`` for the URI and the ref)."""
        return record_dict(self, rename={"model_uri": "model", "dataset_ref": "dataset"})

    def __repr__(self) -> str:
        key = next((k for k in ("roc_auc", "r2") if self.metrics.get(k) is not None), None)
        key = key or next((k for k, v in self.metrics.items() if v is not None), None)
        score = f", {key} {self.metrics[key]:.4g}" if key else ""
        data = self.dataset_ref or "a frame"
        return f"EvaluationResult({self.model_uri} on {data}, {self.num_rows:,} rows{score})"
