"""Realised performance: a model's metrics once the labels (ground truth) are known.

Labels arrive late and not for every prediction, so every result says how many
predictions it covers and how many are still unlabelled; metrics are computed on the
labelled rows only.

- :func:`realised_performance`: one set of metrics over predictions and labels (a
  label of ``None`` or NaN means "not labelled yet");
- :func:`performance_over_time`: the same per time window (``"1h"``, ``"15min"``,
  ``"1D"``: pandas offsets, windows aligned to the epoch, UTC) or per ``N`` consecutive
  rows, optionally with the confidence-based estimate of
  :mod:`milepost.monitoring.estimation` beside it (``estimated_accuracy``,
  ``estimated_roc_auc``) so estimate and realised values can be compared once labels
  come.

Metrics (names as they appear in :attr:`Performance.metrics` and the window table):

- classification: ``accuracy``; ``precision_macro``, ``recall_macro``, ``f1_macro``
  (unweighted mean over the classes present in the labels or the predictions; a class
  never predicted has precision 0); ``roc_auc`` (needs the probabilities: for two
  classes the score of the second class in ``classes``, else one-vs-rest averaged over
  the classes that have both positive and negative labelled rows); ``log_loss`` (natural
  logarithm, needs the probabilities, every label one of ``classes``);
- regression: ``mae``, ``rmse`` (both in the target's unit), ``r2`` (1 is perfect, 0 is
  as good as predicting the mean; undefined for constant labels).

A metric that cannot be computed is ``None`` and :attr:`Performance.notes` says why
(no labels, one class only, no probabilities); never NaN without a reason.

Values are compared as numbers when every prediction and label is a number (so ``1``
and ``1.0`` are one class), else as text (``"1"``, ``"yes"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from milepost._records import record_dict
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt
    import pandas as pd

    from milepost.monitoring.estimation import Calibration

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "Performance",
    "performance_over_time",
    "realised_performance",
]

Task = Literal["classification", "regression"]

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc",
    "log_loss",
)
REGRESSION_METRICS = ("mae", "rmse", "r2")


@dataclass(frozen=True)
class Performance:
    """Metrics over the labelled predictions, and how many are labelled.

    ``status`` is ``"ok"``, ``"no_labels"`` (predictions but no label yet: every metric
    ``None``) or ``"empty"`` (no prediction at all).
    """

    task: str
    metrics: dict[str, float | None]
    predictions: int
    labelled: int
    status: str
    notes: tuple[str, ...] = field(default=())

    @property
    def unlabelled(self) -> int:
        """Predictions still waiting for a label."""
        return self.predictions - self.labelled

    @property
    def share_labelled(self) -> float:
        """Labelled predictions per prediction (0 with none)."""
        return self.labelled / self.predictions if self.predictions else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``unlabelled`` and ``share_labelled``)."""
        return record_dict(
            self, extra={"unlabelled": self.unlabelled, "share_labelled": self.share_labelled}
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in self.metrics.items() if v is not None)
        return (
            f"Performance({self.task}: {self.labelled:,}/{self.predictions:,} labelled"
            + (f", {shown}" if shown else f", {self.status}")
            + ")"
        )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, str)


def _text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _common(*groups: Sequence[Any]) -> list[npt.NDArray[Any]]:
    """The groups as arrays of one comparable kind: numbers if all are numbers, else text."""
    if all(_is_number(v) for g in groups for v in g):
        return [np.asarray(g, dtype=np.float64) for g in groups]
    return [np.asarray([_text(v) for v in g], dtype=object) for g in groups]


def _probabilities(probabilities: Any, n: int, classes: Sequence[Any] | None) -> Any:
    """An ``(n, k)`` float array (a 1-D array is the second class's probability)."""
    if probabilities is None:
        return None
    if classes is None:
        raise InvalidInput(
            "Probabilities need the class of each column.",
            hint="Pass classes=[...] in the order of the probability columns.",
        )
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.shape != (n, len(classes)):
        raise InvalidInput(
            f"Probabilities have shape {p.shape}, expected ({n}, {len(classes)}): "
            "one row per prediction, one column per class.",
            hint="Pass classes in the order of the probability columns.",
        )
    return p


def _auc(y: npt.NDArray[np.bool_], score: npt.NDArray[np.float64]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def _classification(
    pred: Sequence[Any],
    label: Sequence[Any],
    proba: npt.NDArray[np.float64] | None,
    classes: Sequence[Any] | None,
    notes: list[str],
) -> dict[str, float | None]:
    from sklearn.metrics import log_loss, precision_recall_fscore_support

    if classes is not None:
        y, p, cls = _common(label, pred, list(classes))
    else:
        y, p = _common(label, pred)
        cls = None
    out: dict[str, float | None] = dict.fromkeys(CLASSIFICATION_METRICS)
    out["accuracy"] = float(np.mean(y == p))
    seen = sorted(set(y.tolist()) | set(p.tolist()), key=str)
    prec, rec, f1, _ = precision_recall_fscore_support(
        y, p, labels=seen, average="macro", zero_division=0.0
    )
    out.update(precision_macro=float(prec), recall_macro=float(rec), f1_macro=float(f1))
    if proba is None or cls is None:
        notes.append("roc_auc and log_loss need the predicted probabilities")
        return out
    if len(cls) == 2:
        pos = y == cls[1]
        if pos.all() or not pos.any():
            notes.append("roc_auc needs labelled rows of both classes")
        else:
            out["roc_auc"] = _auc(pos, proba[:, 1])
    else:
        aucs = [
            _auc(y == c, proba[:, k])
            for k, c in enumerate(cls)
            if (y == c).any() and not (y == c).all()
        ]
        if aucs:
            out["roc_auc"] = float(np.mean(aucs))
        else:
            notes.append("roc_auc needs labelled rows of at least two classes")
    unknown = sorted({_text(v) for v in y.tolist()} - {_text(c) for c in cls.tolist()})
    if unknown:
        notes.append(f"log_loss needs every label among the classes; not: {unknown[:5]}")
    else:
        # scikit-learn takes the columns in sorted class order, whatever ``labels`` says
        order = np.argsort(cls, kind="stable")
        out["log_loss"] = float(log_loss(y, proba[:, order], labels=cls[order]))
    return out


def _regression(
    pred: Sequence[Any], label: Sequence[Any], notes: list[str]
) -> dict[str, float | None]:
    try:
        y = np.asarray(label, dtype=np.float64)
        p = np.asarray(pred, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Regression needs numeric predictions and labels: {exc}.",
            hint="Pass task='classification' for class labels.",
        ) from exc
    err = p - y
    out: dict[str, float | None] = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": None,
    }
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot > 0:
        out["r2"] = 1.0 - float(np.sum(err**2)) / ss_tot
    else:
        notes.append("r2 is undefined when every label is the same")
    return out


def realised_performance(
    predictions: Sequence[Any] | npt.ArrayLike,
    labels: Sequence[Any] | npt.ArrayLike,
    *,
    task: Task,
    probabilities: npt.ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
) -> Performance:
    """The task's metrics over the predictions that have a label.

    Args:
        predictions: one predicted value per row (a class or a number).
        labels: the ground truth, aligned with ``predictions``; ``None`` or NaN where no
            label has arrived yet (those rows count as unlabelled).
        task: ``"classification"`` or ``"regression"``.
        probabilities: classification only, optional: an ``(n, k)`` array, column ``j``
            the probability of ``classes[j]`` (or, for two classes, a 1-D array: the
            second class's probability). Enables ``roc_auc`` and ``log_loss``.
        classes: the class of each probability column.

    Raises:
        InvalidInput: unknown task, predictions and labels of different lengths,
            probabilities of the wrong shape, non-numeric regression values.
    """
    if task not in ("classification", "regression"):
        raise InvalidInput(
            f"Unknown task {task!r}.", hint="Use task='classification' or task='regression'."
        )
    pred = list(np.asarray(predictions, dtype=object).ravel())
    label = list(np.asarray(labels, dtype=object).ravel())
    if len(pred) != len(label):
        raise InvalidInput(
            f"{len(pred)} predictions but {len(label)} labels.",
            hint="Pass one label per prediction (None where none has arrived yet).",
        )
    proba = _probabilities(probabilities, len(pred), classes) if task == "classification" else None
    names = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    mask = np.asarray([not _missing(v) for v in label], dtype=bool)
    labelled = int(mask.sum())
    if not pred:
        return Performance(task, dict.fromkeys(names), 0, 0, "empty", ("no predictions",))
    if not labelled:
        return Performance(
            task, dict.fromkeys(names), len(pred), 0, "no_labels", ("no labelled predictions",)
        )
    idx = np.flatnonzero(mask)
    pred_l = [pred[i] for i in idx]
    label_l = [label[i] for i in idx]
    notes: list[str] = []
    if task == "classification":
        metrics = _classification(
            pred_l, label_l, None if proba is None else proba[idx], classes, notes
        )
    else:
        metrics = _regression(pred_l, label_l, notes)
    return Performance(task, metrics, len(pred), labelled, "ok", tuple(notes))


def performance_over_time(
    frame: pd.DataFrame,
    *,
    task: Task,
    window: str | int = "1h",
    time_column: str = "ts",
    prediction_column: str = "prediction",
    label_column: str = "label",
    probability_column: str | None = "probabilities",
    classes: Sequence[Any] | None = None,
    calibration: Calibration | None = None,
) -> pd.DataFrame:
    """:func:`realised_performance` per window, one row per window in time order.

    Args:
        frame: one row per prediction (e.g. :attr:`LabelledPredictions.frame`): a time
            column, the prediction, the label (``None``/NaN: not labelled yet) and,
            optionally, a column holding each row's probabilities (a list per row).
        window: a pandas offset (``"1h"``, ``"15min"``, ``"1D"``; windows aligned to the
            epoch in UTC, empty windows between busy ones included with status
            ``"empty"``) or a number of rows (consecutive rows in time order; the last
            window may hold fewer).
        classes: the class of each probability column; with probabilities and classes,
            the table also has the confidence-based estimate (``estimated_accuracy``,
            ``estimated_roc_auc``, ``estimate_valid``; see
            :func:`~milepost.monitoring.estimation.estimate_performance`), computed on
            every row of the window, labelled or not.
        calibration: the reference's calibration check, which decides whether the
            estimate is valid (and calibrates it, when it was made with
            ``calibrate=True``); without it every estimate is marked not valid.

    Returns:
        A DataFrame with ``window_start``, ``window_end`` (times; for row windows the
        first and last row's times), ``predictions``, ``labelled``, ``unlabelled``,
        ``share_labelled``, ``status``, one column per metric and, with probabilities,
        the estimate's columns.

    Raises:
        InvalidInput: a missing column or a window that is neither an offset nor a
            positive number of rows.
    """
    import pandas as pd

    from milepost.monitoring.estimation import estimate_performance

    for col in (time_column, prediction_column, label_column):
        if col not in frame.columns:
            raise InvalidInput(
                f"The frame has no column {col!r} (it has {list(frame.columns)[:10]}).",
                hint="Name the columns with time_column=, prediction_column=, label_column=.",
            )
    has_proba = (
        probability_column is not None
        and probability_column in frame.columns
        and classes is not None
        and task == "classification"
    )
    ts = pd.to_datetime(frame[time_column], utc=True)
    data = frame.assign(**{time_column: ts}).sort_values(time_column, kind="stable")
    data = data.reset_index(drop=True)
    groups: list[tuple[Any, Any, pd.DataFrame]] = []
    if isinstance(window, int) and not isinstance(window, bool):
        if window < 1:
            raise InvalidInput(f"window={window} rows.", hint="Use at least one row per window.")
        for first in range(0, len(data), window):
            part = data.iloc[first : first + window]
            groups.append((part[time_column].iloc[0], part[time_column].iloc[-1], part))
    else:
        try:
            offset = pd.tseries.frequencies.to_offset(str(window))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"window={window!r} is neither a time offset nor a number of rows.",
                hint="Use e.g. window='1h', '15min', '1D' or window=1000 (rows).",
            ) from exc
        # grouped on naive UTC times: pandas aligns day windows to the epoch only there
        naive = data.assign(_window=data[time_column].dt.tz_convert(None))
        grouper = pd.Grouper(key="_window", freq=offset, origin="epoch")
        for begin, part in naive.groupby(grouper):
            stamp = pd.Timestamp(begin).tz_localize("UTC")  # type: ignore[arg-type]
            groups.append((stamp, stamp + offset, part.drop(columns="_window")))
    names = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    rows: list[dict[str, Any]] = []
    for start, end, part in groups:
        proba = None
        if has_proba and len(part) and part[probability_column].notna().all():
            proba = np.asarray(part[probability_column].tolist(), dtype=np.float64)
        perf = realised_performance(
            part[prediction_column].tolist(),
            part[label_column].tolist(),
            task=task,
            probabilities=proba,
            classes=classes if proba is not None else None,
        )
        row: dict[str, Any] = {
            "window_start": start,
            "window_end": end,
            "predictions": perf.predictions,
            "labelled": perf.labelled,
            "unlabelled": perf.unlabelled,
            "share_labelled": perf.share_labelled,
            "status": perf.status,
            **{k: perf.metrics.get(k) for k in names},
        }
        if has_proba:
            est = (
                estimate_performance(proba, classes=classes or [], calibration=calibration)
                if proba is not None
                else None
            )
            row["estimated_accuracy"] = None if est is None else est.accuracy
            row["estimated_roc_auc"] = None if est is None else est.roc_auc
            row["estimate_valid"] = False if est is None else est.valid
        rows.append(row)
    columns = [
        "window_start",
        "window_end",
        "predictions",
        "labelled",
        "unlabelled",
        "share_labelled",
        "status",
        *names,
    ]
    if has_proba:
        columns += ["estimated_accuracy", "estimated_roc_auc", "estimate_valid"]
    return pd.DataFrame(rows, columns=columns)
