"""Late labels joined to the prediction log: real segments, real feedback rows, every backend."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from milepost import Runtime
from milepost.monitoring import LabelSource, labelled_predictions, performance_over_time
from milepost.serving.logger import PredictionLogger, new_request_id

T0 = (time.time_ns() // 1_000_000) - 3_600_000  # an hour ago, epoch ms


def _row(
    rid: str,
    i: int,
    at: int,
    prediction: Any,
    *,
    variant: str = "churn-v1",
    role: str = "primary",
    status: str = "ok",
    endpoint: str = "churn-ep",
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "row": i,
        "ts": at,
        "endpoint": endpoint,
        "variant": variant,
        "model": "churn",
        "version": 2 if role == "shadow" else 1,
        "role": role,
        "key": "k",
        "features": "{}",
        "prediction": None if status != "ok" else json.dumps(prediction),
        "latency_ms": 1.0,
        "status": status,
        "error": None if status == "ok" else "boom",
    }


def _log(runtime: Runtime, rows: list[dict[str, Any]], endpoint: str = "churn-ep") -> None:
    logger = PredictionLogger(
        endpoint, runtime.settings.home / "predictions", runtime.serving.store, interval=3600
    )
    for row in rows:
        logger.append(row)
    logger.close()


def test_the_serving_store_is_a_label_source(runtime: Runtime) -> None:
    store: LabelSource = runtime.serving.store  # mypy checks the protocol here
    assert store.feedback_between("churn-ep", 0) == []


def test_labels_join_their_rows_and_the_rest_count_as_unlabelled(runtime: Runtime) -> None:
    store = runtime.serving.store
    rows: list[dict[str, Any]] = []
    ids = [new_request_id(T0 + 1000 * i) for i in range(6)]
    for i, rid in enumerate(ids):
        # requests 0-3 have one row, 4 and 5 two rows; predictions alternate 0/1
        for r in range(1 if i < 4 else 2):
            rows.append(_row(rid, r, T0 + 1000 * i + 3, (i + r) % 2))
            rows.append(_row(rid, r, T0 + 1000 * i + 5, 1, variant="churn-v2", role="shadow"))
    failed = new_request_id(T0 + 7000)
    rows.append(_row(failed, 0, T0 + 7002, None, status="error"))
    _log(runtime, rows)
    # labels for requests 0 and 1 and row 1 of request 4, nothing else
    store.add_feedback("churn-ep", ids[0], [0])
    store.add_feedback("churn-ep", ids[1], [0])
    store.add_feedback("churn-ep", ids[4], [1], offset=1)
    # the same request id labelled on another endpoint is not this endpoint's label
    store.add_feedback("other-ep", ids[2], [0])

    joined = labelled_predictions(store, store, "churn-ep", since_ms=T0)
    # 8 answered rows (the error and the shadow's copies are not answers)
    assert (joined.predictions, joined.labelled, joined.unlabelled) == (8, 3, 5)
    assert joined.share_labelled == pytest.approx(3 / 8)
    frame = joined.frame
    assert set(frame["variant"]) == {"churn-v1"}
    got = {
        (rid, row): label
        for rid, row, label in frame[["request_id", "row", "label"]].itertuples(index=False)
    }
    assert got[(ids[0], 0)] == 0 and got[(ids[1], 0)] == 0 and got[(ids[4], 1)] == 1
    assert got[(ids[2], 0)] is None and got[(ids[4], 0)] is None
    assert frame.loc[frame["label"].notna(), "labelled_at"].notna().all()
    perf = joined.performance("classification")
    # request 0 predicted 0 (right), 1 predicted 1 (wrong), 4 row 1 predicted 1 (right)
    assert perf.metrics["accuracy"] == pytest.approx(2 / 3)
    assert (perf.predictions, perf.labelled, perf.unlabelled) == (8, 3, 5)
    assert joined.to_dict()["unlabelled"] == 5

    # the shadow's answers score against the same labels: it said 1 everywhere
    shadow = labelled_predictions(store, store, "churn-ep", since_ms=T0, variant="churn-v2")
    assert (shadow.predictions, shadow.labelled) == (8, 3)
    assert shadow.performance("classification").metrics["accuracy"] == pytest.approx(1 / 3)


def test_labels_arriving_later_shrink_the_unlabelled_count(runtime: Runtime) -> None:
    store = runtime.serving.store
    ids = [new_request_id(T0 + 10 * i) for i in range(5)]
    _log(runtime, [_row(rid, 0, T0 + 10 * i + 1, 1) for i, rid in enumerate(ids)])
    before = labelled_predictions(store, store, "churn-ep", since_ms=T0)
    assert (before.labelled, before.unlabelled) == (0, 5)
    assert before.performance("classification").status == "no_labels"
    for rid in ids[:4]:
        store.add_feedback("churn-ep", rid, [1])
    after = labelled_predictions(store, store, "churn-ep", since_ms=T0)
    assert (after.labelled, after.unlabelled) == (4, 1)
    assert after.performance("classification").metrics["accuracy"] == 1.0


def test_a_window_reads_only_its_predictions_and_their_labels(runtime: Runtime) -> None:
    store = runtime.serving.store
    early, inside, late = (new_request_id(T0 + d) for d in (0, 60_000, 120_000))
    _log(
        runtime,
        [
            _row(early, 0, T0 + 2, 1),
            _row(inside, 0, T0 + 60_002, 1),
            _row(late, 0, T0 + 120_002, 0),
        ],
    )
    for rid in (early, inside, late):
        store.add_feedback("churn-ep", rid, [1])
    window = labelled_predictions(
        store, store, "churn-ep", since_ms=T0 + 30_000, until_ms=T0 + 90_000
    )
    assert window.frame["request_id"].tolist() == [inside]
    assert window.labelled == 1
    # the store's range read by request time, both ends inclusive
    rids = [r[0] for r in store.feedback_between("churn-ep", T0 + 60_000, T0 + 60_000)]
    assert rids == [inside]
    assert [r[0] for r in store.feedback_between("churn-ep", T0)] == [early, inside, late]
    assert store.feedback_between("churn-ep", T0 + 120_001) == []


def test_logged_probabilities_give_roc_auc_and_an_empty_log_reads_as_empty(
    runtime: Runtime,
) -> None:
    store = runtime.serving.store
    empty = labelled_predictions(store, store, "churn-ep", since_ms=T0)
    assert (empty.predictions, empty.labelled, empty.share_labelled) == (0, 0, 0.0)
    assert empty.performance("classification").status == "empty"
    scores = [0.9, 0.2, 0.7, 0.4]
    truth = ["yes", "no", "no", "yes"]
    ids = [new_request_id(T0 + i) for i in range(4)]
    _log(
        runtime,
        [
            _row(
                rid,
                0,
                T0 + i + 1,
                {"prediction": "yes" if s > 0.5 else "no", "probabilities": [1 - s, s]},
            )
            for i, (rid, s) in enumerate(zip(ids, scores, strict=True))
        ]
        # a bare probability row: the class is read from classes=
        + [_row(new_request_id(T0 + 9), 0, T0 + 10, [0.25, 0.75])],
    )
    for rid, label in zip(ids, truth, strict=True):
        store.add_feedback("churn-ep", rid, [label])
    joined = labelled_predictions(store, store, "churn-ep", since_ms=T0, classes=["no", "yes"])
    assert joined.frame["prediction"].tolist() == ["yes", "no", "yes", "no", "yes"]
    perf = joined.performance("classification", classes=["no", "yes"])
    # positives score 0.9 and 0.4, negatives 0.2 and 0.7: 3 of 4 pairs ordered right
    assert perf.metrics["roc_auc"] == pytest.approx(0.75)
    assert perf.metrics["accuracy"] == pytest.approx(0.5)
    # per window, the confidence-based estimate beside the realised values
    table = performance_over_time(
        joined.frame, task="classification", window="1D", classes=["no", "yes"]
    )
    assert table["predictions"].sum() == 5 and table["labelled"].sum() == 4
    day = table[table["predictions"] > 0].iloc[0]
    assert day["estimated_accuracy"] == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.6, 0.75]))


def _old_segment(runtime: Runtime, rows: list[dict[str, Any]], endpoint: str = "churn-ep") -> None:
    """A segment as the server wrote it before the log had a ``probabilities`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from milepost.serving.logger import LOG_SCHEMA

    old = LOG_SCHEMA.remove(LOG_SCHEMA.get_field_index("probabilities"))
    path = runtime.settings.home / "old-segment.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=old), path)
    stamps = [r["ts"] for r in rows]
    runtime.serving.store.add_segments(
        [
            {
                "endpoint": endpoint,
                "path": str(path),
                "rows": len(rows),
                "first_at": min(stamps),
                "last_at": max(stamps),
            }
        ]
    )


def test_served_probabilities_give_roc_auc_log_loss_and_the_estimate_beside_older_segments(
    runtime: Runtime,
) -> None:
    """Rows as the model server logs them (``probabilities`` with their classes) read
    with a segment written before the column existed: the classes come from the log."""
    from milepost.monitoring import check_calibration, estimate_performance

    store = runtime.serving.store
    old_ids = [new_request_id(T0 + i) for i in range(2)]
    _old_segment(runtime, [_row(rid, 0, T0 + i + 1, 1) for i, rid in enumerate(old_ids)])
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.05, 0.95, 300)
    truth = [1 if rng.uniform() < s else 0 for s in scores]  # calibrated by construction
    ids = [new_request_id(T0 + 100 + i) for i in range(len(scores))]
    rows = []
    for i, (rid, s) in enumerate(zip(ids, scores, strict=True)):
        row = _row(rid, 0, T0 + 101 + i, int(s > 0.5))
        # the server's order: classes as the model has them ([1, 0] here, not sorted)
        row["probabilities"] = json.dumps({"classes": [1, 0], "p": [s, 1 - s]})
        rows.append(row)
    _log(runtime, rows)
    for rid, label in zip(old_ids + ids, [1, 0, *truth], strict=True):
        store.add_feedback("churn-ep", rid, [label])

    joined = labelled_predictions(store, store, "churn-ep", since_ms=T0)
    assert joined.predictions == 302 and joined.classes == [1, 0]
    proba = joined.frame["probabilities"].tolist()
    assert proba[:2] == [None, None]  # the older segment's rows hold none
    np.testing.assert_allclose(proba[2], [scores[0], 1 - scores[0]])
    # without the old rows every row has probabilities: ROC AUC and log loss
    served = labelled_predictions(store, store, "churn-ep", since_ms=T0 + 100)
    perf = served.performance("classification")
    from sklearn.metrics import log_loss, roc_auc_score

    assert perf.metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, scores))
    assert perf.metrics["log_loss"] == pytest.approx(
        log_loss(truth, np.c_[1 - scores, scores], labels=[0, 1])
    )
    # the given classes reorder the logged columns
    sorted_ = labelled_predictions(store, store, "churn-ep", since_ms=T0 + 100, classes=[0, 1])
    np.testing.assert_allclose(sorted_.frame["probabilities"][0], [1 - scores[0], scores[0]])
    assert sorted_.performance("classification").metrics["roc_auc"] == pytest.approx(
        perf.metrics["roc_auc"]
    )
    # the confidence-based estimate runs on served traffic, labels or not
    calibration = check_calibration(np.array(proba[2:]), truth, classes=served.classes or [])
    estimate = estimate_performance(
        np.array(served.frame["probabilities"].tolist()),
        classes=served.classes or [],
        calibration=calibration,
    )
    expected_accuracy = np.mean(np.maximum(scores, 1 - scores))
    assert estimate.accuracy == pytest.approx(expected_accuracy)
    table = performance_over_time(
        served.frame, task="classification", window="1D", classes=served.classes
    )
    day = table[table["predictions"] > 0].iloc[0]
    assert day["estimated_accuracy"] == pytest.approx(expected_accuracy)
    assert day["roc_auc"] == pytest.approx(perf.metrics["roc_auc"])


def test_logged_probabilities_put_every_row_in_one_class_order() -> None:
    """What a monitor reading the raw log (``read_predictions``) calls for the column."""
    from milepost.monitoring import logged_probabilities

    texts = [
        json.dumps({"classes": ["b", "a"], "p": [0.9, 0.1]}),
        None,  # a failed row, a regressor, or an older segment
        json.dumps({"classes": ["a", "b"], "p": [0.3, 0.7]}),  # another version's order
        json.dumps({"classes": ["a", "b", "c"], "p": [0.2, 0.3, 0.5]}),  # other classes
    ]
    classes, rows = logged_probabilities(texts)
    assert classes == ["b", "a"]
    assert rows == [[0.9, 0.1], None, [0.7, 0.3], None]
    classes, rows = logged_probabilities(texts, ["a", "b"])
    assert rows == [[0.1, 0.9], None, [0.3, 0.7], None]
    assert logged_probabilities([None, None]) == (None, [None, None])
