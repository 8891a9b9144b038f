"""Optional ONNX twins of scikit-learn models, kept only when they agree.

At log time a scikit-learn model can be converted with skl2onnx (numbers as double
tensors, falling back to float; text as string tensors). The twin is kept only when its
outputs match the original's within ``tolerance`` (probabilities for classifiers,
predictions otherwise), or both refuse, on the input example and on probe rows built
from it: each number column at zero, small, large and near-float32-limit values, each
text column at an unseen and an empty category. It is checked as it serves: rows it is
not trusted on (nulls, non-finite or beyond-float32 numbers) go to the native model
(see :class:`~milepost.models.flavors.OnnxPredictor`). Otherwise the reason is recorded
and the model is served from its skops file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np
    import pandas as pd

__all__ = ["OnnxOutcome", "convert"]

# Values each probe row puts in one column of the example's first complete row.
_FLOAT_PROBES = (0.0, -1.0, 0.5, 1e9, -1e9, 3e38, -3e38)
_INT_PROBES = (0, -1, 10**9, -(10**9), 2**53)
_TEXT_PROBES = ("__milepost_unseen__", "")


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


def _outputs(model: Any, frame: pd.DataFrame, *, proba: bool | None = None) -> np.ndarray:
    import numpy as np

    if hasattr(model, "predict_proba") if proba is None else proba:
        return np.asarray(model.predict_proba(frame), dtype=np.float64)
    return np.asarray(model.predict(frame), dtype=np.float64).ravel()


def _trees(model: Any, depth: int = 0) -> Iterator[Any]:
    """The fitted scikit-learn decision trees inside a model (pipelines, ensembles)."""
    import numpy as np

    if depth > 6:
        return
    if hasattr(model, "tree_"):
        yield model
    children: list[Any] = [step for _, step in getattr(model, "steps", None) or []]
    children += [t for _, t, _ in getattr(model, "transformers_", None) or []]
    estimators = getattr(model, "estimators_", None)
    if estimators is not None:
        children += list(np.ravel(np.asarray(estimators, dtype=object)))
    for child in children:
        if not isinstance(child, str):
            yield from _trees(child, depth + 1)


def _splits_on_missing(model: Any) -> bool:
    """True when a tree routes missing values with an infinite threshold (a tree trained
    on data with NaN): skl2onnx 1.20 loops forever converting such a threshold."""
    import numpy as np

    for tree in _trees(model):
        inner = tree.tree_.children_left != -1
        if not np.isfinite(tree.tree_.threshold[inner]).all():
            return True
    return False


def _probes(example: pd.DataFrame) -> pd.DataFrame | None:
    """Rows that each change one column of the example's first complete row."""
    import pandas as pd

    complete = example.dropna()
    if complete.empty:
        return None
    base = complete.head(1)
    rows = []
    for column in example.columns:
        dtype = example[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            continue
        if pd.api.types.is_integer_dtype(dtype):
            values: tuple[Any, ...] = _INT_PROBES
        elif pd.api.types.is_numeric_dtype(dtype):
            values = _FLOAT_PROBES
        else:
            values = _TEXT_PROBES
        for value in values:
            row = base.copy()
            try:
                row[column] = pd.Series([value], index=row.index, dtype=dtype)
            except (OverflowError, TypeError, ValueError):  # does not fit a narrower dtype
                continue
            rows.append(row)
    return pd.concat(rows, ignore_index=True) if rows else None


def _verdict(predict: Callable[[pd.DataFrame], Any], frame: pd.DataFrame) -> Any:
    """The outputs as float64, or the exception the model raised."""
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(predict(frame), dtype=np.float64)
    except Exception as exc:
        return exc


def _agree(a: Any, b: Any, tolerance: float) -> bool:
    import numpy as np

    if isinstance(a, Exception) or isinstance(b, Exception):
        return isinstance(a, Exception) and isinstance(b, Exception)
    return bool(a.shape == b.shape and np.allclose(a, b, rtol=0, atol=tolerance, equal_nan=True))


def _say(verdict: Any) -> str:
    import numpy as np

    if isinstance(verdict, Exception):
        return f"raises {type(verdict).__name__}"
    return f"answers {np.round(verdict, 6).tolist()}"


def _disagreement(model: Any, twin: Any, probes: pd.DataFrame, tolerance: float) -> str | None:
    """How the twin (as served: with the native model behind it) and the model differ on
    the probe rows, or None when they agree on every row."""
    if hasattr(model, "predict_proba"):
        native, served = model.predict_proba, twin.predict_proba
    else:
        native, served = model.predict, twin.predict
    whole = _verdict(native, probes)
    if not isinstance(whole, Exception) and _agree(whole, _verdict(served, probes), tolerance):
        return None
    for i in range(len(probes)):  # one of them refused the batch: compare row by row
        row = probes.iloc[[i]]
        a, b = _verdict(native, row), _verdict(served, row)
        if not _agree(a, b, tolerance):
            shown = dict(row.iloc[0].items())
            return f"on probe row {shown} the model {_say(a)} but the twin {_say(b)}"
    return None


def convert(model: Any, example: pd.DataFrame, *, tolerance: float = 1e-4) -> OnnxOutcome:
    """Convert and verify; never raises for an unconvertible model (the reason says why)."""
    import numpy as np
    import pandas as pd

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
    if _splits_on_missing(model):
        return OnnxOutcome(
            None,
            None,
            "ONNX twin not kept: a tree splits on missing values (an infinite threshold), "
            "which skl2onnx cannot convert; the model is served natively",
        )
    probes = _probes(example)
    if probes is None:
        return OnnxOutcome(
            None,
            None,
            "ONNX twin not kept: the input example has no row without nulls to verify it on",
        )
    for types in attempts:
        try:
            with warnings.catch_warnings():  # skl2onnx and onnx warn about numpy and opsets
                warnings.simplefilter("ignore")
                onx = convert_sklearn(
                    model,
                    initial_types=types,
                    options=options,
                    target_opset={"": 17, "ai.onnx.ml": 3},
                )
            data = onx.SerializeToString()
            alone = OnnxPredictor(data)  # the twin by itself, on the complete rows
            complete = example.dropna()
            got = _outputs(alone, complete, proba=hasattr(model, "predict_proba"))
        except Exception as exc:
            last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        want = expected[np.flatnonzero(example.notna().all(axis=1).to_numpy())]
        diff = float(np.max(np.abs(got - want)))
        if not diff <= tolerance:  # NaN too
            last_error = f"outputs differ by {diff:.2e} > tolerance {tolerance:g}"
            continue
        problem = _disagreement(model, OnnxPredictor(data, native=lambda: model), probes, tolerance)
        if problem is not None:
            last_error = problem
            continue
        return OnnxOutcome(
            data,
            diff,
            f"verified on the input example (max diff {diff:.2e}) and {len(probes)} probe rows",
        )
    return OnnxOutcome(None, None, f"ONNX twin not kept: {last_error}")
