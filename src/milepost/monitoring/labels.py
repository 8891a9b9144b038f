"""Late labels joined to logged predictions: what is labelled, what is still waiting.

Ground truth arrives after the prediction, through ``POST /v1/endpoints/{name}/feedback``
(a label per row of a request, by request id), and is kept by the serving store. The
predictions are in the prediction log (:func:`~milepost.monitoring.read_predictions`).
:func:`labelled_predictions` reads both for a window and joins them on
``(request_id, row)``: every logged prediction once, with its label or ``None``.

Monitoring does not import serving: the labels come from anything with the store's
``feedback_between`` method (:class:`LabelSource`; the serving store has it, as it has
the prediction log's ``segments``). Request ids are time-ordered (their first 48 bits are
the request's epoch milliseconds), so the labels of a window are one range read by id.
A row is logged a few milliseconds after its id is made, so labels are read from
``LABEL_MARGIN_MS`` before the window's start; the join keeps only the logged rows.

Which predictions count: rows answered ``ok``; without ``variant``, the answers clients
got (every variant but shadows); with ``variant``, that variant's rows (a shadow's too:
its answers can be scored against the same labels).

The logged ``prediction`` is JSON text: a value (a class or a number) is the prediction;
a list of numbers is a row of class probabilities (the prediction is then the class of
the largest, from ``classes``, else its column index); an object may carry
``"prediction"`` (or ``"label"``) and ``"probabilities"``.

The model server logs a classifier's probabilities in the ``probabilities`` column:
``{"classes": [...], "p": [...]}`` (null for regressors and for segments written before
the column existed). They are used in the order of the window's classes: ``classes``
when given, else the first logged row's; a row whose logged classes are another order of
the same classes is reordered, a row with other classes (another model version) gets no
probabilities. :attr:`LabelledPredictions.classes` says which order that is, so
:meth:`LabelledPredictions.performance` has ROC AUC and log loss, and
:func:`~milepost.monitoring.performance_over_time` (``classes=joined.classes``) the
confidence-based estimate, on served traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from milepost._records import record_dict

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import pandas as pd

    from milepost.monitoring.performance import Performance, Task
    from milepost.monitoring.predictions import SegmentSource

__all__ = [
    "LABEL_MARGIN_MS",
    "LabelSource",
    "LabelledPredictions",
    "labelled_predictions",
    "logged_probabilities",
]

#: How long before a window's start labels are read (a row's log time is after its id's).
LABEL_MARGIN_MS = 300_000

_READ = [
    "request_id",
    "row",
    "ts",
    "variant",
    "model",
    "version",
    "role",
    "prediction",
    "probabilities",
    "status",
]
COLUMNS = [
    "request_id",
    "row",
    "ts",
    "variant",
    "model",
    "version",
    "prediction",
    "probabilities",
    "label",
    "labelled_at",
]


class LabelSource(Protocol):
    """Where ground truth is kept (the serving store)."""

    def feedback_between(
        self, endpoint: str, since_ms: int, until_ms: int | None = None
    ) -> list[tuple[str, int, Any, int]]:
        """``(request_id, row, label, labelled_at_ms)`` of the requests made in the
        window (by the time in the request id), both ends inclusive."""
        ...


@dataclass(frozen=True)
class LabelledPredictions:
    """Logged predictions of a window with their labels (``None``: not labelled yet).

    ``frame`` has one row per prediction, in log order: ``request_id, row, ts`` (UTC),
    ``variant, model, version, prediction, probabilities`` (a list, or ``None`` when not
    logged), ``label``, ``labelled_at`` (epoch ms, or ``None``). ``classes``: the class
    of each probability column (``None`` when no row logged probabilities with classes
    and none were given).
    """

    frame: pd.DataFrame
    endpoint: str
    since_ms: int
    until_ms: int | None
    classes: list[Any] | None = None

    @property
    def predictions(self) -> int:
        """Predictions in the window."""
        return len(self.frame)

    @property
    def labelled(self) -> int:
        """Predictions with a label."""
        return int(self.frame["label"].notna().sum()) if len(self.frame) else 0

    @property
    def unlabelled(self) -> int:
        """Predictions still waiting for a label."""
        return self.predictions - self.labelled

    @property
    def share_labelled(self) -> float:
        """Labelled predictions per prediction (0 with none)."""
        return self.labelled / self.predictions if self.predictions else 0.0

    def performance(self, task: Task, *, classes: Sequence[Any] | None = None) -> Performance:
        """:func:`~milepost.monitoring.realised_performance` over the window (with the
        probabilities when every row logged them and the classes are known: ``classes``,
        default :attr:`classes`)."""
        from milepost.monitoring.performance import realised_performance

        classes = self.classes if classes is None else classes
        proba = self.frame["probabilities"].tolist() if len(self.frame) else []
        usable = classes is not None and bool(proba) and all(p is not None for p in proba)
        return realised_performance(
            self.frame["prediction"].tolist(),
            self.frame["label"].tolist(),
            task=task,
            probabilities=proba if usable else None,
            classes=classes if usable else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict (the rows stay in ``frame``)."""
        return record_dict(
            self,
            exclude=("frame",),
            extra={
                "predictions": self.predictions,
                "labelled": self.labelled,
                "unlabelled": self.unlabelled,
                "share_labelled": self.share_labelled,
            },
        )

    def __repr__(self) -> str:
        return (
            f"LabelledPredictions({self.endpoint}: {self.labelled:,}/{self.predictions:,} "
            f"labelled, {self.unlabelled:,} waiting)"
        )


def _parse(text: str, classes: Sequence[Any] | None) -> tuple[Any, list[float] | None]:
    """(prediction, probabilities) from the logged JSON (module docstring)."""
    value = json.loads(text)
    proba = None
    if isinstance(value, dict):
        proba = value.get("probabilities")
        value = value.get("prediction", value.get("label"))
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        proba = [float(v) for v in value]
        best = max(range(len(proba)), key=proba.__getitem__)
        value = classes[best] if classes is not None and best < len(classes) else best
    return value, proba


def _logged(text: str | None) -> tuple[list[Any] | None, list[float] | None]:
    """(classes, probabilities) of a ``probabilities`` log value (None, None: none)."""
    if text is None:
        return None, None
    value = json.loads(text)
    p = value.get("p") if isinstance(value, dict) else None
    if not isinstance(p, list):
        return None, None
    classes = value.get("classes")
    return (classes if isinstance(classes, list) else None), [float(v) for v in p]


def _ordered(
    proba: list[float] | None, logged: list[Any] | None, classes: list[Any] | None
) -> list[float] | None:
    """A row's probabilities in the order of ``classes`` (None: not comparable)."""
    if proba is None or logged is None or classes is None or logged == classes:
        return proba
    where = {json.dumps(c): j for j, c in enumerate(logged)}
    index = [where.get(json.dumps(c)) for c in classes]
    if len(logged) != len(classes) or None in index:
        return None
    return [proba[j] for j in index]  # type: ignore[index]


def logged_probabilities(
    texts: Iterable[str | None], classes: Sequence[Any] | None = None
) -> tuple[list[Any] | None, list[list[float] | None]]:
    """Each row's probabilities from the log's ``probabilities`` column, in one order.

    Args:
        texts: the column's values (JSON text, or None where a row logged none).
        classes: the order to put them in; default the classes of the first row that
            names them.

    Returns:
        ``(classes, rows)``: the order used (None when neither given nor logged) and one
        list per row, None for a row that logged none or logged other classes (see the
        module docstring).
    """
    texts = list(texts)
    logged = {text: _logged(text) for text in set(texts) if text is not None}
    order = _list(classes)
    if order is None:
        order = next((logged[t][0] for t in texts if t is not None and logged[t][0]), None)
    rows = [
        None if text is None else _ordered(logged[text][1], logged[text][0], order)
        for text in texts
    ]
    return order, rows


def labelled_predictions(
    log: SegmentSource,
    labels: LabelSource,
    endpoint: str,
    *,
    since_ms: int,
    until_ms: int | None = None,
    variant: str | None = None,
    classes: Sequence[Any] | None = None,
) -> LabelledPredictions:
    """The ``ok`` predictions of ``endpoint`` in the window joined with their labels.

    Args:
        log: where the prediction-log segments are registered (the serving store).
        labels: where the feedback is kept (the serving store).
        since_ms, until_ms: the window of log times, epoch ms, both inclusive (no end:
            up to now).
        variant: one variant's rows (shadows included); default the answers clients got.
        classes: the class of each probability column, to name the predicted class when
            the log holds probabilities only, and the order the logged probabilities are
            put in (default: the classes the first row logged).
    """
    import pandas as pd

    from milepost.monitoring.predictions import read_predictions

    table = read_predictions(
        log, endpoint, since_ms=since_ms, until_ms=until_ms, variant=variant, columns=_READ
    )
    if table is None or not table.num_rows:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return LabelledPredictions(frame, endpoint, since_ms, until_ms, _list(classes))
    log_rows = table.to_pandas()
    keep = (log_rows["status"] == "ok") & log_rows["prediction"].notna()
    if variant is None:
        keep &= log_rows["role"] != "shadow"
    log_rows = log_rows[keep].reset_index(drop=True)
    found = {
        (rid, int(row)): (value, int(at))
        for rid, row, value, at in labels.feedback_between(
            endpoint, since_ms - LABEL_MARGIN_MS, until_ms
        )
    }
    # most logs repeat few prediction texts: parse each distinct one once
    parsed = {text: _parse(text, classes) for text in set(log_rows["prediction"])}
    pairs = [parsed[text] for text in log_rows["prediction"]]
    texts = [t if isinstance(t, str) else None for t in log_rows["probabilities"]]
    order, logged = logged_probabilities(texts, classes)
    probabilities = [
        q if text is None else p for (_, q), text, p in zip(pairs, texts, logged, strict=True)
    ]
    keys = zip(log_rows["request_id"], log_rows["row"].astype(int), strict=True)
    joined = [found.get((rid, row), (None, None)) for rid, row in keys]
    # object columns: a label 1 stays 1 (not 1.0) and a missing one stays None
    frame = pd.DataFrame(
        {
            "request_id": log_rows["request_id"],
            "row": log_rows["row"].astype("int64"),
            "ts": pd.to_datetime(log_rows["ts"], utc=True),
            "variant": log_rows["variant"],
            "model": log_rows["model"],
            "version": log_rows["version"],
            "prediction": pd.Series([p for p, _ in pairs], dtype=object),
            "probabilities": pd.Series(probabilities, dtype=object),
            "label": pd.Series([label for label, _ in joined], dtype=object),
            "labelled_at": pd.Series([at for _, at in joined], dtype=object),
        },
        columns=COLUMNS,
    )
    return LabelledPredictions(frame, endpoint, since_ms, until_ms, order)


def _list(classes: Sequence[Any] | None) -> list[Any] | None:
    return None if classes is None else list(classes)
