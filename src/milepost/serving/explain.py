"""Explanations: per-feature SHAP contributions for one or more rows.

Pipelines whose last step is a tree ensemble or a linear model are explained with
TreeExplainer or LinearExplainer on the transformed inputs, and the contributions of
one-hot or otherwise derived columns are summed back onto the input column they came
from. Anything else with numeric inputs gets SHAP's model-agnostic explainer over the
input example. Contributions are in the model's raw output (log-odds for classifiers):
``base_value + sum(contributions)`` equals that output for each row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.models.service import LoadedModel

__all__ = ["build_explainer"]

_TREES = (
    "HistGradientBoosting",
    "GradientBoosting",
    "RandomForest",
    "ExtraTrees",
    "DecisionTree",
    "LGBM",
    "XGB",
)
_LINEAR = ("LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGD")


def _source_column(name: str, inputs: list[str]) -> str:
    """``num__age`` -> ``age``; ``cat__plan_basic`` -> ``plan`` (longest matching input)."""
    bare = name.split("__", 1)[-1]
    matches = [c for c in inputs if bare == c or bare.startswith(c + "_")]
    return max(matches, key=len) if matches else bare


def build_explainer(loaded: LoadedModel) -> Callable[[pd.DataFrame], list[dict[str, Any]]]:
    """A function from input rows to explanations, chosen for the model."""
    try:
        import shap
    except ModuleNotFoundError as exc:
        raise InvalidInput(
            "Explanations need SHAP.", hint="pip install 'milepost[explain]'"
        ) from exc
    model = loaded.native
    inputs = loaded.signature.input_names if loaded.signature else []
    background = pd.DataFrame(loaded.version.input_example or [])
    if background.empty:
        raise InvalidInput(
            f"{loaded.version.uri} has no input example to explain against.",
            hint="Log the model with input_example=...",
        )
    steps = getattr(model, "steps", None)
    final = steps[-1][1] if steps else model
    kind = type(final).__name__
    if steps and (kind.startswith(_TREES) or kind.startswith(_LINEAR)):
        prep = model[:-1]
        names = list(prep.get_feature_names_out())
        bg = np.asarray(
            prep.transform(background[inputs] if inputs else background), dtype=np.float64
        )
        if kind.startswith(_TREES):
            explainer = shap.TreeExplainer(final, model_output="raw")
        else:
            explainer = shap.LinearExplainer(final, bg)

        def explain(frame: pd.DataFrame) -> list[dict[str, Any]]:
            x = np.asarray(prep.transform(frame), dtype=np.float64)
            sv = explainer.shap_values(x)
            values = np.asarray(sv[1] if isinstance(sv, list) else sv)
            if values.ndim == 3:  # (rows, features, classes): explain the positive class
                values = values[:, :, -1]
            base = np.asarray(explainer.expected_value).ravel()[-1]
            out = []
            for row in values:
                contrib: dict[str, float] = {}
                for name, v in zip(names, row, strict=True):
                    col = _source_column(name, inputs)
                    contrib[col] = contrib.get(col, 0.0) + float(v)
                out.append(
                    {
                        "base_value": float(base),
                        "contributions": contrib,
                        "output": float(base + row.sum()),
                        "output_space": "raw (log-odds)"
                        if hasattr(final, "predict_proba")
                        else "prediction",
                    }
                )
            return out

        return explain
    if not all(pd.api.types.is_numeric_dtype(background[c]) for c in background.columns):
        raise InvalidInput(
            f"{loaded.version.uri}: explanations for a {kind} need numeric inputs or a "
            "pipeline ending in a tree ensemble or linear model."
        )
    predict = (
        (lambda x: model.predict_proba(pd.DataFrame(x, columns=background.columns))[:, -1])
        if hasattr(model, "predict_proba")
        else (lambda x: model.predict(pd.DataFrame(x, columns=background.columns)))
    )
    agnostic = shap.Explainer(predict, background.to_numpy(dtype=np.float64))

    def explain_agnostic(frame: pd.DataFrame) -> list[dict[str, Any]]:
        result = agnostic(frame[list(background.columns)].to_numpy(dtype=np.float64))
        return [
            {
                "base_value": float(np.ravel(result.base_values)[i]),
                "contributions": {
                    c: float(v) for c, v in zip(background.columns, result.values[i], strict=True)
                },
                "output": float(np.ravel(result.base_values)[i] + result.values[i].sum()),
                "output_space": "probability" if hasattr(model, "predict_proba") else "prediction",
            }
            for i in range(len(frame))
        ]

    return explain_agnostic
