"""Optional ONNX twins of scikit-learn models, kept only when they agree.

At log time a scikit-learn model can be converted with skl2onnx (numbers as double
tensors, falling back to float; text as string tensors). The twin is kept only when, on
the input example, its outputs match the original's within ``tolerance`` (probabilities
for classifiers, predictions otherwise); otherwise the reason is recorded and the
model is served from its skops file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["OnnxOutcome", "convert"]


@dataclass(frozen=True)
class OnnxOutcome:
    """The ONNX file when kept, and what the check found."""

    data: bytes | None
    max_abs_diff: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without the bytes)."""
        return {
            "kept": self.data is not None,
            "max_abs_diff": self.max_abs_diff,
            "reason": self.reason,
        }


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def _outputs(model: Any, frame: pd.DataFrame) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(frame), dtype=np.float64)
    return np.asarray(model.predict(frame), dtype=np.float64).ravel()


def convert(model: Any, example: pd.DataFrame, *, tolerance: float = 1e-4) -> OnnxOutcome:
    """Convert and verify; never raises for an unconvertible model (the reason says why)."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import (
            DoubleTensorType,
            FloatTensorType,
            StringTensorType,
        )

        from milepost.models.flavors import OnnxPredictor
    except ModuleNotFoundError as exc:
        return OnnxOutcome(
            None, None, f"ONNX conversion needs {exc.name}: pip install 'milepost[onnx]'"
        )

    final = _final_estimator(model)
    options = {type(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    expected = _outputs(model, example)
    last_error = ""
    numeric = all(
        pd.api.types.is_numeric_dtype(example[c]) and not pd.api.types.is_bool_dtype(example[c])
        for c in example.columns
    )
    attempts: list[list[tuple[str, Any]]] = []
    for number_type in (DoubleTensorType, FloatTensorType):
        # one input per column (pipelines with a column transformer) ...
        attempts.append(
            [
                (
                    str(c),
                    number_type([None, 1])
                    if pd.api.types.is_numeric_dtype(example[c])
                    and not pd.api.types.is_bool_dtype(example[c])
                    else StringTensorType([None, 1]),
                )
                for c in example.columns
            ]
        )
        if numeric:  # ... or one matrix (estimators that take an array)
            attempts.append([("X", number_type([None, example.shape[1]]))])
    for types in attempts:
        try:
            onx = convert_sklearn(
                model, initial_types=types, options=options, target_opset={"": 17, "ai.onnx.ml": 3}
            )
            data = onx.SerializeToString()
            predictor = OnnxPredictor(data)
            got = (
                predictor.predict_proba(example)
                if hasattr(model, "predict_proba")
                else predictor.predict(example).astype(np.float64)
            )
        except Exception as exc:
            last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - expected)))
        if diff <= tolerance:
            return OnnxOutcome(data, diff, f"verified on the input example (max diff {diff:.2e})")
        last_error = f"outputs differ by {diff:.2e} > tolerance {tolerance:g}"
    return OnnxOutcome(None, None, f"ONNX twin not kept: {last_error}")
