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
``"prediction"`` (or ``"label"``) and ``"probabilities"``. (Today's model server logs
the predicted value only, so probabilities, and with them ROC AUC, log loss and the
confidence-based estimate, need a log that holds them.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from milepost._records import record_dict

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from milepost.monitoring.performance import Performance, Task
    from milepost.monitoring.predictions import SegmentSource

__all__ = [
    "LABEL_MARGIN_MS",
    "LabelSource",
    "LabelledPredictions",
    "labelled_predictions",
]

#: How long before a window's start labels are read (a row's log time is after its id's).
LABEL_MARGIN_MS = 300_000

_READ = ["request_id", "row", "ts", "variant", "model", "version", "role", "prediction", "status"]
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
    logged), ``label``, ``labelled_at`` (epoch ms, or ``None``).
    """

    frame: pd.DataFrame
    endpoint: str
    since_ms: int
    until_ms: int | None

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
        probabilities when every row logged them and ``classes`` is given)."""
        from milepost.monitoring.performance import realised_performance

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
            the log holds probabilities only.
    """
    import pandas as pd

    from milepost.monitoring.predictions import read_predictions

    table = read_predictions(
        log, endpoint, since_ms=since_ms, until_ms=until_ms, variant=variant, columns=_READ
    )
    if table is None or not table.num_rows:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return LabelledPredictions(frame, endpoint, since_ms, until_ms)
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
            "probabilities": pd.Series([q for _, q in pairs], dtype=object),
            "label": pd.Series([label for label, _ in joined], dtype=object),
            "labelled_at": pd.Series([at for _, at in joined], dtype=object),
        },
        columns=COLUMNS,
    )
    return LabelledPredictions(frame, endpoint, since_ms, until_ms)
