"""Explanations: exact per-feature SHAP contributions, saying what they explain.

The explainer is chosen for the model's last estimator, bare or at the end of a
Pipeline (whose earlier steps transform the inputs; contributions of one-hot or other
derived columns are summed back onto the input column they came from):

- **Tree ensembles** (scikit-learn forests, extra trees, decision trees, gradient
  boosting, HistGradientBoosting; LightGBM; XGBoost): SHAP's TreeExplainer with its
  path-dependent algorithm, exact, and it follows the trees' own routing of missing
  values. Its background is the training data as the trees recorded it (each node's
  share of the training rows). SHAP's "interventional" algorithm, which takes a
  background sample, is not used: with shap 0.51 it breaks additivity on deep trees (by
  up to 0.47 log-odds on a HistGradientBoosting model here; shap issue #3267).
- **Linear models** (scikit-learn ``linear_model``): SHAP's LinearExplainer, exact,
  against a background sample.
- **Anything else**: SHAP's model-agnostic permutation explainer against a background
  sample, seeded per row (the same row always gets the same answer) and bounded in
  model evaluations; numeric inputs (after the pipeline's transformations) only.

The background sample is up to 100 rows of the training dataset recorded with the
version (role ``train``), drawn with a fixed seed once per explainer; only when none is
recorded (or it lacks the inputs) is it the version's input example.

Each explanation states ``output_space``, the space its numbers are in: ``probability``
(scikit-learn forests and trees: their trees hold class probabilities), ``log-odds``
(gradient boosting, HistGradientBoosting, LightGBM, XGBoost and logistic regression for
two classes), ``raw score (softmax input)`` (those with more classes), ``margin``
(other linear classifiers) or ``prediction`` (regressors). ``output`` is the model's
own answer in that space (``predict_proba``, its logit, the decision function or
``predict``) and ``base_value + sum(contributions) == output``, checked for every row:
a row that does not add up is refused rather than explained wrongly. For classifiers,
``explained_class`` names the class: the positive one for two classes, else the
predicted one.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from milepost.errors import InvalidInput, MilepostError

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.data.service import DataService
    from milepost.models.service import LoadedModel
    from milepost.models.signature import Signature

__all__ = ["BACKGROUND_ROWS", "Explainer", "build_explainer", "training_background"]

BACKGROUND_ROWS = 100
_SEED = 0
_AGNOSTIC_ROWS = 50  # background rows the permutation explainer integrates over
_AGNOSTIC_EVALS = 200  # model evaluations per explained row (at least 2 x features + 1)

_TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "lightgbm", "xgboost")
_TREE_NAMES = (
    "RandomForest",
    "ExtraTrees",
    "ExtraTree",
    "DecisionTree",
    "GradientBoosting",
    "HistGradientBoosting",
    "LGBM",
    "XGB",
)
_PROBABILITY_TREES = ("RandomForest", "ExtraTrees", "ExtraTree", "DecisionTree")
_LOG_ODDS_LINEAR = ("LogisticRegression", "LogisticRegressionCV")

# shap's permutation explainer seeds NumPy's global generator; explain one row at a time
# under this lock, re-seeded, so an answer never depends on earlier requests.
_AGNOSTIC_LOCK = threading.Lock()


@dataclass(frozen=True)
class Background:
    """The rows an explanation is measured against, and where they came from."""

    frame: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _typed(frame: pd.DataFrame, signature: Signature | None) -> pd.DataFrame:
    """Columns as the model predicts on them (NaN in number columns, None elsewhere)."""
    if signature is None:
        return frame
    out: dict[str, pd.Series] = {}
    for spec in signature.inputs:
        col = frame[spec.name]
        if spec.type in ("float", "integer") and (spec.type == "float" or col.isna().any()):
            out[spec.name] = pd.to_numeric(col, errors="coerce").astype(np.float64)
        elif spec.type == "integer":
            out[spec.name] = col.astype(np.int64)
        elif spec.type == "boolean" and not col.isna().any():
            out[spec.name] = col.astype(np.bool_)
        else:
            out[spec.name] = col.astype(object).where(col.notna(), None)
    return pd.DataFrame(out).reset_index(drop=True)


def training_background(
    loaded: LoadedModel, data: DataService | None, *, rows: int = BACKGROUND_ROWS
) -> Background:
    """A seeded sample of the version's training data, else its input example.

    Raises:
        InvalidInput: neither is recorded with the version.
    """
    version = loaded.version
    inputs = loaded.signature.input_names if loaded.signature else None
    why = f"no training dataset is recorded with {version.uri}"
    train = [d for d in version.datasets if d.get("role") == "train"]
    if train and data is not None:
        ref = train[0]["ref"]
        try:
            sample = _sample(data, ref, inputs, rows)
        except MilepostError as exc:  # gone or unreadable: say so, use the example
            why = f"training dataset {ref} could not be read ({exc.message})"
        else:
            if isinstance(sample, str):
                why = sample
            else:
                return Background(
                    _typed(sample, loaded.signature),
                    {"source": "dataset", "ref": ref, "rows": len(sample), "seed": _SEED},
                )
    example = version.input_example
    if not example:
        raise InvalidInput(
            f"{version.uri} has no background to explain against: {why}, and no input example.",
            hint="Log the training dataset with the run (log_input(..., role='train')) or "
            "log the model with input_example=...",
        )
    frame = pd.DataFrame(example)
    frame = frame[inputs] if inputs else frame
    return Background(
        _typed(frame, loaded.signature),
        {"source": "input_example", "rows": len(frame), "reason": why},
    )


def _sample(data: DataService, ref: str, inputs: list[str] | None, rows: int) -> pd.DataFrame | str:
    """Up to ``rows`` rows of a dataset's ``inputs``, drawn with a fixed seed (read from
    the snapshot's Parquet files without loading the rest), or why there are none."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    dataset = data.get(ref)
    if inputs is None:
        return "the version has no signature to pick the dataset's columns with"
    missing = [c for c in inputs if c not in dataset.columns]
    if missing:
        return f"training dataset {ref} lacks input column {missing[0]!r}"
    if not dataset.num_rows:
        return f"training dataset {ref} has no rows"
    n = min(rows, dataset.num_rows)
    picked = np.sort(np.random.default_rng(_SEED).choice(dataset.num_rows, size=n, replace=False))
    files = ds.dataset([str(p) for p in data.local_files(dataset)], format="parquet")
    frame: pd.DataFrame = files.take(pa.array(picked, pa.int64()), columns=inputs).to_pandas()
    return frame


def _family(final: Any) -> str:
    """``tree``, ``linear`` or ``other``."""
    cls = type(final)
    if cls.__module__.startswith(_TREE_MODULES) and cls.__name__.startswith(_TREE_NAMES):
        return "tree"
    if cls.__module__.startswith("sklearn.linear_model") and hasattr(final, "coef_"):
        return "linear"
    return "other"


def _output_space(final: Any, family: str, classes: int) -> str:
    if not hasattr(final, "classes_"):
        return "prediction"
    name = type(final).__name__
    if family == "other":
        return "probability" if hasattr(final, "predict_proba") else "margin"
    if family == "tree" and name.startswith(_PROBABILITY_TREES):
        return "probability"
    if family == "linear" and not (
        name.startswith(_LOG_ODDS_LINEAR) or getattr(final, "loss", "") == "log_loss"
    ):
        return "margin"
    return "log-odds" if classes == 2 else "raw score (softmax input)"


def _output(final: Any, x: Any, space: str) -> np.ndarray:
    """The model's own output in ``space``: (rows,) or (rows, classes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if space == "probability":
            return np.asarray(final.predict_proba(x), dtype=np.float64)
        if space == "prediction":
            return np.asarray(final.predict(x), dtype=np.float64)
        module = type(final).__module__
        if module.startswith("lightgbm"):
            return np.asarray(final.predict(x, raw_score=True), dtype=np.float64)
        if module.startswith("xgboost"):
            return np.asarray(final.predict(x, output_margin=True), dtype=np.float64)
        return np.asarray(final.decision_function(x), dtype=np.float64)


def _source_column(name: str, inputs: list[str]) -> str:
    """``num__age`` -> ``age``; ``cat__plan_basic`` -> ``plan`` (longest matching input)."""
    bare = name.split("__", 1)[-1]
    matches = [c for c in inputs if bare == c or bare.startswith(c + "_")]
    return max(matches, key=len) if matches else bare


class Explainer:
    """Explanations for one loaded model version (built once, used per request)."""

    def __init__(self, loaded: LoadedModel, data: DataService | None = None) -> None:
        try:
            with warnings.catch_warnings():  # its plotting imports warn about matplotlib
                warnings.simplefilter("ignore")
                import shap
        except ModuleNotFoundError as exc:
            raise InvalidInput(
                "Explanations need SHAP.", hint="pip install 'milepost[explain]'"
            ) from exc
        self.uri = loaded.version.uri
        model = loaded.native
        steps = getattr(model, "steps", None)
        self.prep: Any = model[:-1] if steps else None
        self.final: Any = steps[-1][1] if steps else model
        self.signature = loaded.signature
        self.inputs = (
            loaded.signature.input_names
            if loaded.signature
            else [str(c) for c in getattr(self.final, "feature_names_in_", [])]
        )
        self.family = _family(self.final)
        classes = len(getattr(self.final, "classes_", []))
        self.space = _output_space(self.final, self.family, classes)
        self.classes = list(getattr(self.final, "classes_", []))
        self.background: dict[str, Any]
        self._explain: Callable[[Any], tuple[np.ndarray, np.ndarray]]
        if self.family == "tree":
            tree = shap.TreeExplainer(self.final, feature_perturbation="tree_path_dependent")
            self.method = "tree (path-dependent)"
            self.background = {"source": "training data as the trees recorded it (node cover)"}
            self._explain = lambda x: (
                np.asarray(tree.shap_values(x, check_additivity=False)),
                np.asarray(tree.expected_value, dtype=np.float64),
            )
            example = loaded.version.input_example
            if example:
                self._check_on(_typed(pd.DataFrame(example), self.signature))
            return
        bg = training_background(loaded, data)
        matrix = self._matrix(bg.frame)
        numbers = self._numbers(matrix)
        finite = np.isfinite(numbers).all(axis=1)
        if not finite.any():
            raise InvalidInput(f"{self.uri}: no background row is complete enough to explain with.")
        matrix = numbers[finite] if self.prep is not None else matrix.loc[finite]
        self.background = {**bg.info, "rows": int(finite.sum())}
        if self.family == "linear":
            linear = shap.LinearExplainer(self.final, np.asarray(matrix, dtype=np.float64))
            self.method = "linear"
            self._explain = lambda x: (
                np.asarray(linear.shap_values(np.asarray(x, dtype=np.float64))),
                np.asarray(linear.expected_value, dtype=np.float64),
            )
            self._check_on(bg.frame.loc[finite].head(5))
            return
        self.method = "permutation (model-agnostic)"
        self._explain = self._agnostic(shap, matrix)

    # -- building blocks ----------------------------------------------------------------

    def _matrix(self, frame: pd.DataFrame) -> Any:
        """What the last estimator takes: the pipeline's transformed matrix, or the frame."""
        if self.prep is None:
            return frame[self.inputs] if self.inputs else frame
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = self.prep.transform(frame)
        if hasattr(x, "toarray"):
            x = x.toarray()
        return np.asarray(x, dtype=np.float64)

    def _numbers(self, matrix: Any) -> np.ndarray:
        try:
            return np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"{self.uri}: a {type(self.final).__name__} is explained by SHAP's "
                "model-agnostic explainer, which needs numeric inputs (or a pipeline that "
                "turns them into numbers)."
            ) from None

    def _names(self, width: int) -> list[str]:
        """The input column each of the last estimator's features comes from."""
        if self.prep is None:
            return (
                list(self.inputs) if len(self.inputs) == width else [str(i) for i in range(width)]
            )
        try:
            names = [str(n) for n in self.prep.get_feature_names_out()]
        except Exception:  # a step without feature names: only a 1:1 mapping is safe
            if len(self.inputs) != width:
                raise InvalidInput(
                    f"{self.uri}: cannot map the pipeline's {width} features back to its "
                    f"{len(self.inputs)} inputs (a step has no get_feature_names_out)."
                ) from None
            return list(self.inputs)
        return [_source_column(n, self.inputs) for n in names]

    def _agnostic(self, shap: Any, matrix: Any) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
        data = self._numbers(matrix)[:_AGNOSTIC_ROWS]
        columns = list(matrix.columns) if isinstance(matrix, pd.DataFrame) else None
        final, space = self.final, self.space

        def f(x: np.ndarray) -> np.ndarray:
            frame = pd.DataFrame(x, columns=columns) if columns is not None else x
            return _output(final, frame, space)

        width = data.shape[1]
        evals = max(2 * width + 1, _AGNOSTIC_EVALS)
        self.background["rows"] = len(data)
        explainer = shap.PermutationExplainer(f, shap.maskers.Independent(data, len(data)))

        def run(x: Any) -> tuple[np.ndarray, np.ndarray]:
            values, bases = [], []
            with _AGNOSTIC_LOCK:
                for row in self._numbers(x):
                    np.random.seed(_SEED)  # shap draws from NumPy's global generator
                    result = explainer(row[None, :], max_evals=evals, silent=True)
                    values.append(result.values[0])
                    bases.append(np.ravel(result.base_values[0]))
            return np.asarray(values), np.asarray(bases)

        return run

    def _check_on(self, frame: pd.DataFrame) -> None:
        """Refuse a model the explainer cannot explain exactly (checked on a few rows)."""
        if frame.empty:
            return
        try:
            self(frame)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{self.uri} cannot be explained exactly with SHAP's {self.method} explainer: "
                f"{exc.message}"
            ) from exc

    # -- explaining -----------------------------------------------------------------------

    def __call__(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One explanation per row of ``frame`` (checked input, in signature order).

        Raises:
            InvalidInput: a row's contributions do not add up to the model's output.
        """
        frame = _typed(frame.reset_index(drop=True), self.signature)
        x = self._matrix(frame)
        output = _output(self.final, x, self.space)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values, base = self._explain(x)
        names = self._names(values.shape[1])
        picked = self._classes(frame, output)
        out = []
        for i in range(len(frame)):
            j = picked[i]
            row = values[i] if values.ndim == 2 else values[i, :, j]
            b = base if base.ndim < 2 else base[i]
            b = float(b) if b.ndim == 0 else float(b[j] if b.size > 1 else b[0])
            o = float(output[i] if output.ndim == 1 else output[i, j])
            total = b + float(row.sum())
            if not abs(total - o) <= 1e-5 * max(1.0, abs(o)):
                raise InvalidInput(
                    f"Row {i} cannot be explained exactly: the contributions add up to "
                    f"{total:.6g} but {self.uri} answers {o:.6g} ({self.space}).",
                    hint="Predict it without an explanation.",
                )
            contrib: dict[str, float] = {}
            for name, v in zip(names, row, strict=True):
                contrib[name] = contrib.get(name, 0.0) + float(v)
            explained: dict[str, Any] = {
                "base_value": b,
                "contributions": contrib,
                "output": o,
                "output_space": self.space,
                "method": self.method,
                "background": dict(self.background),
            }
            if self.classes:
                explained["explained_class"] = _plain(self.classes[j])
            out.append(explained)
        return out

    def _classes(self, frame: pd.DataFrame, output: np.ndarray) -> list[int]:
        """Which class each row's explanation is for (the positive one for two classes)."""
        if not self.classes:
            return [0] * len(frame)
        if len(self.classes) == 2:
            return [1] * len(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = self._matrix(frame)
            proba = np.asarray(self.final.predict_proba(x)) if self.space != "margin" else output
        return [int(k) for k in np.argmax(proba, axis=1)]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def build_explainer(loaded: LoadedModel, *, data: DataService | None = None) -> Explainer:
    """The explainer for a loaded version (see the module docstring for the choice).

    Raises:
        InvalidInput: SHAP is missing, no background is recorded, or the model cannot be
            explained exactly.
    """
    return Explainer(loaded, data)
